//! `riskgrad monitor`: how far a new file has moved from the rows a model was trained on.
//! Scores the file in batches (memory stays at one batch and one count per bin), bins
//! its scores and input columns as training binned its own (`stability.json` in the
//! model directory), and reports the score's PSI and every column's CSI with their
//! bands: as text on stdout, and with `--json` and `--html` as files.

use super::output::open_output_for;
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::files::FileSet;
use riskgrad::scoring::{open_data, Scorer};
use riskgrad::stability::{
    html, Band, Baseline, Monitor, Shift, StabilityReport, EPSILON, SHIFTED_ABOVE, WATCH_FROM,
};
use riskgrad::{Error, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Version of the `--json` document; it changes only when a field changes meaning or
/// goes away.
const JSON_SCHEMA: u32 = 1;

/// Fewer new rows than this get a note: a share per bin from so few is mostly noise.
const FEW_ROWS: u64 = 100;

#[derive(clap::Args, Debug)]
pub struct MonitorArgs {
    /// The model directory `riskgrad train --out` wrote (its stability.json holds the
    /// training rows' distributions).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The new data file to compare with the training rows, CSV (.csv or .csv.gz) or
    /// Parquet (.parquet, or a directory of .parquet files): the model's input columns,
    /// in any order (the target may be absent).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Also write the report as one JSON document (fields: README, "Stability
    /// monitoring").
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write a self-contained HTML page: the table and a chart per distribution of
    /// the training and new shares per bin.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Rows scored per batch.
    #[arg(long, default_value_t = 4096)]
    pub batch: usize,
    /// auto | cpu | gpu | <adapter index> | <adapter name substring>.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    #[command(flatten)]
    pub tune: super::TuneArg,
}

pub fn run(args: &MonitorArgs) -> Result<()> {
    if args.batch == 0 {
        return Err(Error::flag("--batch", "must be at least 1"));
    }
    if let (Some(j), Some(h)) = (&args.json, &args.html) {
        if same_path(j, h) {
            return Err(Error::flag(
                "--html",
                format!("{} is also the --json file; name two files", h.display()),
            ));
        }
    }
    // Every output is checked against the inputs before any work.
    let inputs = [args.model.as_path(), args.data.as_path()];
    let json_out = match &args.json {
        Some(p) => Some(open_output_for("--json", p, &inputs)?),
        None => None,
    };
    let html_out = match &args.html {
        Some(p) => Some(open_output_for("--html", p, &inputs)?),
        None => None,
    };
    let model = super::load_model(&args.model)?;
    let baseline = Baseline::load(&args.model, &model)?;
    let mut reader = open_data(Some(&args.data), &model)?.with_raw();
    let mut exec = super::executor_tuned(&args.device, args.tune.mode)?;
    let (mut scorer, mut next) =
        Scorer::for_first_batch(exec.as_mut(), &model, &mut reader, args.batch)?;
    if next.is_none() {
        return Err(Error::data_file(
            &args.data,
            "no data rows: nothing to compare with the training rows",
        ));
    }
    let mut monitor = Monitor::new(&baseline);
    while let Some(batch) = next {
        let scores = scorer.score(&model.arrange(batch.x))?;
        monitor.add(&scores, batch.raw.as_deref().unwrap_or_default())?;
        next = reader.next_batch(scorer.batch())?;
    }
    super::data_args::report_scoring_notes(reader.odd_cells(), &reader.unused_columns());
    let report = monitor.report();
    if report.rows < FEW_ROWS {
        eprintln!(
            "note: {} has only {} row{}: shares per bin from fewer than about {FEW_ROWS} rows are mostly noise, and so are the indices",
            args.data.display(),
            report.rows,
            if report.rows == 1 { "" } else { "s" }
        );
    }
    print!("{}", text(&report, &args.model, &args.data));
    // Both files written and synced before either is renamed into place: a full disk
    // at the second leaves neither (it once left a new --json beside no --html).
    let mut files = FileSet::new();
    if let Some(mut w) = json_out {
        let doc = json_document(&report, &args.model, &args.data);
        let bytes = serde_json::to_vec_pretty(&doc).map_err(Error::internal)?;
        w.write_all(&bytes)?;
        w.write_all(b"\n")?;
        files.add_writer(w)?;
    }
    if let Some(mut w) = html_out {
        let title = format!(
            "Stability of {} on {}",
            args.model.display(),
            name(&args.data)
        );
        let details = vec![
            ("model".into(), args.model.display().to_string()),
            (
                "training rows".into(),
                format!(
                    "{} (the baseline saved with the model)",
                    report.training_rows
                ),
            ),
            ("new data".into(), args.data.display().to_string()),
            ("new rows".into(), report.rows.to_string()),
            ("riskgrad".into(), env!("CARGO_PKG_VERSION").into()),
        ];
        w.write_all(html::page(&report, &title, &details).as_bytes())?;
        files.add_writer(w)?;
    }
    files.commit()
}

/// Whether two output paths name the same file (as written, or once made absolute).
fn same_path(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::path::absolute(a), std::path::absolute(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

fn name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    )
}

/// The report as the terminal shows it: the score's PSI, a line per column, the columns
/// that moved.
fn text(report: &StabilityReport, model: &Path, data: &Path) -> String {
    let mut t = format!(
        "{}: {} rows, against the {} training rows of {}\n",
        data.display(),
        report.rows,
        report.training_rows,
        model.display()
    );
    t.push_str(&format!(
        "score PSI {:.4}  {}  ({} bins: the training score deciles)\n",
        report.score.index,
        report.score.band.name(),
        report.score.bins.len()
    ));
    let width = report
        .columns
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0)
        .max("column".len());
    t.push_str(&format!(
        "{:<width$}  {:<11}  {:>4}  {:>8}  band\n",
        "column", "kind", "bins", "CSI"
    ));
    for c in &report.columns {
        t.push_str(&format!(
            "{:<width$}  {:<11}  {:>4}  {:>8.4}  {}\n",
            c.name,
            c.kind,
            c.bins.len(),
            c.index,
            c.band.name()
        ));
    }
    let list = |band: Band| match report.columns_in(band) {
        v if v.is_empty() => "none".to_string(),
        v => v.join(", "),
    };
    t.push_str(&format!(
        "shifted: {}; watch: {} (below {WATCH_FROM} stable, {WATCH_FROM} to {SHIFTED_ABOVE} watch, above {SHIFTED_ABOVE} shifted)\n",
        list(Band::Shifted),
        list(Band::Watch)
    ));
    t
}

/// One distribution in the JSON document; `index` names its index (`psi` or `csi`).
fn shift_json(shift: &Shift, index: &str) -> serde_json::Value {
    let mut v = json!({
        "name": shift.name,
        "kind": shift.kind,
        "band": shift.band,
        "bins": shift.bins,
    });
    v[index] = json!(shift.index);
    v
}

/// The `--json` document (fields in the README).
fn json_document(report: &StabilityReport, model: &Path, data: &Path) -> serde_json::Value {
    json!({
        "schema": JSON_SCHEMA,
        "riskgrad_version": env!("CARGO_PKG_VERSION"),
        "model": model.display().to_string(),
        "data": data.display().to_string(),
        "rows": report.rows,
        "training_rows": report.training_rows,
        "epsilon": EPSILON,
        "bands": {"watch_from": WATCH_FROM, "shifted_above": SHIFTED_ABOVE},
        "score": shift_json(&report.score, "psi"),
        "columns": report.columns.iter().map(|c| shift_json(c, "csi")).collect::<Vec<_>>(),
        "shifted": report.columns_in(Band::Shifted),
        "watch": report.columns_in(Band::Watch),
    })
}
