//! `riskgrad explain`: reason codes per applicant (the columns that pushed the score
//! toward default the most, by integrated gradients) and a global importance summary;
//! with `--reasons FILE`, the reasons as the file's codes and texts.

use super::output::open_output;
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::explain::{by_source, top_reasons, Explainer, Importance, ImportanceSum, Reason};
use riskgrad::reasons::{CodedReason, ReasonCodes};
use riskgrad::scoring::open_data;
use riskgrad::{Error, Result};
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// The model directory `riskgrad train --out` wrote.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Data file of applicants: CSV (.csv or .csv.gz) or Parquet (.parquet, or a
    /// directory of .parquet files). Default: the bundled Taiwan file.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Reasons per applicant: the columns (or, with --reasons, the codes) that raised
    /// the probability of default the most; fewer when fewer raised it at all. At most
    /// one a column of the model: a larger value gives them all.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    /// A CSV file with the header `column,code,text` and a row per input column of the
    /// model, giving each a reason code and the text a decline letter shows (columns may
    /// share a code; their contributions are then summed). Reasons are then given as
    /// codes and texts. A model column the file leaves out is reported under its own
    /// name, with a warning.
    #[arg(long, value_name = "FILE")]
    pub reasons: Option<PathBuf>,
    /// Explain only the first N rows (each costs --steps forward and backward passes).
    #[arg(long, value_name = "N")]
    pub rows: Option<usize>,
    /// Points on the path from the baseline to the applicant (midpoint rule).
    #[arg(long, default_value_t = 64)]
    pub steps: usize,
    /// Write the per-applicant reasons to this CSV file instead of printing them.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Applicants per run (a run holds batch × steps points).
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// auto | cpu | gpu | <adapter index> | <adapter name substring>.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    #[command(flatten)]
    pub tune: super::TuneArg,
}

#[derive(Serialize)]
struct Row {
    id: String,
    score: f32,
    reasons: Reasons,
}

/// A row's reasons: raw columns, or with `--reasons` the file's codes.
#[derive(Serialize)]
#[serde(untagged)]
enum Reasons {
    Columns(Vec<Reason>),
    Coded(Vec<CodedReason>),
}

impl Reasons {
    fn is_empty(&self) -> bool {
        match self {
            Reasons::Columns(r) => r.is_empty(),
            Reasons::Coded(r) => r.is_empty(),
        }
    }

    /// The raw columns behind the reasons (for the importance's top counts).
    fn columns(&self) -> Vec<&str> {
        match self {
            Reasons::Columns(r) => r.iter().map(|r| r.column.as_str()).collect(),
            Reasons::Coded(r) => r
                .iter()
                .flat_map(|r| r.columns.iter().map(String::as_str))
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct JsonOut<'a> {
    baseline_score: f32,
    steps: usize,
    /// With `--reasons`: the model columns the file gives no reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    columns_without_reason: Option<&'a [String]>,
    rows: &'a [Row],
    importance: &'a [Importance],
}

/// Points (applicant rows on the path from the baseline) in one explaining run: 2^22,
/// about 1 GB of activations for a 64-wide model, far past where more steps help.
const MAX_POINTS_PER_RUN: usize = 1 << 22;

pub fn run(args: &ExplainArgs) -> Result<()> {
    run_with(args, &mut |doc| println!("{doc}"))
}

/// [`run`], handing the `--json` document to `emit_json` instead of printing it (the
/// Python package returns it as a dict).
pub fn run_with(args: &ExplainArgs, emit_json: &mut dyn FnMut(&str)) -> Result<()> {
    if args.top == 0 {
        return Err(Error::flag("--top", "must be at least 1"));
    }
    if args.rows == Some(0) {
        return Err(Error::flag("--rows", "must be at least 1"));
    }
    // One run holds batch × (steps + 1) points of every feature.
    let points = args.batch.saturating_mul(args.steps.saturating_add(1));
    if points > MAX_POINTS_PER_RUN {
        return Err(Error::flag(
            if args.steps > MAX_POINTS_PER_RUN / 2 { "--steps" } else { "--batch" },
            format!(
                "--batch {} × (--steps {} + 1) is {points} points per run, over the {MAX_POINTS_PER_RUN} \
                 riskgrad allows; integrated gradients converge by a few hundred steps",
                args.batch, args.steps
            ),
        ));
    }
    let mut inputs = vec![args.model.as_path()];
    inputs.extend(args.data.as_deref());
    inputs.extend(args.reasons.as_deref());
    let out = match &args.out {
        Some(path) => Some(open_output(path, &inputs)?),
        None => None,
    };
    let model = super::load_model(&args.model)?;
    let mut reader = open_data(args.data.as_deref(), &model)?;
    let names = model.source_names();
    let sources = model.feature_sources();
    // A row has at most one reason a column: a larger --top only added empty fields to
    // every line (--top 1000000 wrote 3.7 MB a row, a 20 GB file for 10,000 rows).
    let top = args.top.min(names.len());
    let codes = match &args.reasons {
        Some(path) => {
            let codes = ReasonCodes::read(path, &names)?;
            if !codes.uncovered().is_empty() {
                let list: Vec<String> =
                    codes.uncovered().iter().map(|c| format!("{c:?}")).collect();
                eprintln!(
                    "warning: {} gives no reason for the model's input column(s) {}: each is reported under its own name as code and text",
                    path.display(),
                    list.join(", ")
                );
            }
            Some(codes)
        }
        None => None,
    };
    let mut exec = super::executor_tuned(&args.device, args.tune.mode)?;
    let mut explainer = Explainer::new(exec.as_mut(), &model, args.batch, args.steps)?;
    let baseline_score = explainer.baseline_score();
    let mut importance = ImportanceSum::new(names.clone());
    let mut out_rows = Vec::new();
    let mut csv = match out {
        Some(mut w) => {
            let mut header = String::from("id,score");
            for k in 1..=top {
                if codes.is_some() {
                    header.push_str(&format!(
                        ",reason_{k}_code,reason_{k}_text,reason_{k}_contribution"
                    ));
                } else {
                    header.push_str(&format!(",reason_{k},contribution_{k}"));
                }
            }
            header.push('\n');
            w.write_all(header.as_bytes())?;
            Some(w)
        }
        None => None,
    };
    if !args.json {
        println!("baseline (mean applicant) score {baseline_score:.4}; contributions are to the probability of default");
    }
    let limit = args.rows.unwrap_or(usize::MAX);
    let mut worst_gap = 0.0f64;
    while importance.rows() < limit {
        let Some(batch) = reader.next_batch(args.batch.min(limit - importance.rows()))? else {
            break;
        };
        let done = explainer.explain(&model.arrange(batch.x))?;
        let per_source = by_source(&done.attributions, &sources, names.len());
        for (r, id) in batch.ids.into_iter().enumerate() {
            let row = &per_source[r * names.len()..(r + 1) * names.len()];
            let score = done.scores[r];
            // Completeness: a row's attributions add up to its score minus the
            // baseline's; the largest miss is reported so a user can judge --steps.
            worst_gap =
                worst_gap.max((row.iter().sum::<f64>() - (score - baseline_score) as f64).abs());
            let reasons = match &codes {
                Some(codes) => Reasons::Coded(codes.top(row, top)),
                None => Reasons::Columns(top_reasons(row, &names, top)),
            };
            importance.add(row, reasons.columns());
            if let Some(w) = csv.as_mut() {
                let mut line = format!("{},{score}", csv_field(&id));
                for k in 0..top {
                    match &reasons {
                        Reasons::Columns(r) => match r.get(k) {
                            Some(reason) => line.push_str(&format!(
                                ",{},{:.6}",
                                csv_field(&reason.column),
                                reason.contribution
                            )),
                            None => line.push_str(",,"),
                        },
                        Reasons::Coded(r) => match r.get(k) {
                            Some(reason) => line.push_str(&format!(
                                ",{},{},{:.6}",
                                csv_field(&reason.code),
                                csv_field(&reason.text),
                                reason.contribution
                            )),
                            None => line.push_str(",,,"),
                        },
                    }
                }
                line.push('\n');
                w.write_all(line.as_bytes())?;
            } else if args.json {
                out_rows.push(Row { id, score, reasons });
            } else {
                print_row(&Row { id, score, reasons });
            }
        }
    }
    if importance.rows() == 0 {
        // Only a file can be empty (the bundled data is not), and it is named: the
        // message used to say "--data has no rows" without saying which file.
        return Err(Error::data_file(
            args.data.clone().unwrap_or_default(),
            "no data rows: nothing to explain",
        ));
    }
    if let Some(w) = csv {
        w.commit()?;
    }
    super::data_args::report_scoring_notes(reader.odd_cells(), &reader.unused_columns());
    let global = importance.finish();
    if args.json {
        let out = JsonOut {
            baseline_score,
            steps: args.steps,
            columns_without_reason: codes.as_ref().map(|c| c.uncovered()),
            rows: &out_rows,
            importance: &global,
        };
        emit_json(&serde_json::to_string_pretty(&out).map_err(Error::internal)?);
    } else {
        println!("\nglobal importance over {} rows (mean |contribution|, mean contribution, times a top-{} reason):", importance.rows(), top);
        for imp in global.iter().filter(|i| i.mean_abs > 0.0) {
            println!(
                "  {:<24} {:>8.4}  {:>+8.4}  {:>7}",
                imp.column, imp.mean_abs, imp.mean, imp.top_count
            );
        }
    }
    eprintln!("explained {} rows with {} steps; largest completeness gap |sum - (score - baseline)| = {worst_gap:.2e}", importance.rows(), args.steps);
    if let Some(path) = &args.out {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn print_row(row: &Row) {
    if row.reasons.is_empty() {
        println!(
            "{:>10}  score {:.4}  no column raised the score above the baseline",
            row.id, row.score
        );
        return;
    }
    match &row.reasons {
        Reasons::Columns(reasons) => {
            let shown: Vec<String> = reasons
                .iter()
                .map(|r| format!("{} (+{:.4})", r.column, r.contribution))
                .collect();
            println!(
                "{:>10}  score {:.4}  {}",
                row.id,
                row.score,
                shown.join(", ")
            );
        }
        Reasons::Coded(reasons) => {
            println!("{:>10}  score {:.4}", row.id, row.score);
            for (k, r) in reasons.iter().enumerate() {
                println!(
                    "{:>14}. {}  {}  (+{:.4})",
                    k + 1,
                    r.code,
                    r.text,
                    r.contribution
                );
            }
        }
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
