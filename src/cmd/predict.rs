//! `riskgrad predict`: scores a data file (CSV or Parquet) of any size in batches, writing
//! the rows as it goes (memory stays at one batch, or one Parquet row group), into a
//! temporary file renamed at the end.

use super::output::open_output;
use super::scores_out::ScoresOut;
use riskgrad::data::{Batch, PredictReader};
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::model_io::SavedModel;
use riskgrad::scoring::{open_data, PointsScale, Scorer};
use riskgrad::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// The model directory `riskgrad train --out` wrote.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Data file with the model's columns (the target may be absent): CSV (.csv or
    /// .csv.gz), or Parquet (.parquet, or a directory of .parquet files). Default: the
    /// bundled Taiwan file.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Where to write the scores: the ID column, or the row number when the file has
    /// none, and probability_of_default; with --points, points too. CSV, or Parquet when
    /// the name ends in .parquet (the id as text or the row number as int64,
    /// probability_of_default as float32, points as float64; snappy-compressed).
    #[arg(long, value_name = "SCORES.csv|SCORES.parquet")]
    pub out: PathBuf,
    /// Rows scored per batch.
    #[arg(long, default_value_t = 4096)]
    pub batch: usize,
    /// auto | cpu | gpu | <adapter index> | <adapter name substring>.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    #[command(flatten)]
    pub tune: super::TuneArg,
    /// Add a `points` column, as scorecards scale them: BASE points at good:bad odds of
    /// ODDS:1, PDO more points each time the odds double (600:50:20 gives 600 at 50:1,
    /// 620 at 100:1). Points = BASE - PDO/ln2 * ln(ODDS) + PDO/ln2 * ln((1-p)/p), p
    /// clipped to 1e-6 from 0 and 1, rounded to 2 decimals.
    #[arg(long, value_name = "BASE:ODDS:PDO")]
    pub points: Option<String>,
}

/// `--points BASE:ODDS:PDO` read into a scale; errors name the flag.
pub fn parse_points(value: &str) -> Result<PointsScale> {
    let parts: Vec<&str> = value.split(':').collect();
    let [base, odds, pdo] = parts[..] else {
        return Err(Error::flag(
            "--points",
            format!(
                "{value:?} has {} parts; give BASE:ODDS:PDO, e.g. 600:50:20 (600 points at odds of 50:1, 20 more to double them)",
                parts.len()
            ),
        ));
    };
    let number = |what: &str, s: &str| {
        s.trim().parse::<f64>().map_err(|_| {
            Error::flag(
                "--points",
                format!(
                    "{what} {s:?} in {value:?} is not a number; give BASE:ODDS:PDO, e.g. 600:50:20"
                ),
            )
        })
    };
    let (base, odds, pdo) = (
        number("BASE", base)?,
        number("ODDS", odds)?,
        number("PDO", pdo)?,
    );
    PointsScale::new(base, odds, pdo)
        .map_err(|why| Error::flag("--points", format!("{value:?}: {why}")))
}

pub fn run(args: &PredictArgs) -> Result<()> {
    let started = std::time::Instant::now();
    if args.batch == 0 {
        return Err(Error::flag("--batch", "must be at least 1"));
    }
    let points = args.points.as_deref().map(parse_points).transpose()?;
    let mut inputs = vec![args.model.as_path()];
    inputs.extend(args.data.as_deref());
    let out = open_output(&args.out, &inputs)?;
    let model = super::load_model(&args.model)?;
    let mut reader = open_data(args.data.as_deref(), &model)?;
    let mut exec = super::executor_tuned(&args.device, args.tune.mode)?;
    let device = exec.device_name();
    let mut out = ScoresOut::create(
        out,
        &args.out,
        &id_header(&reader, &model),
        !reader.has_id_column(),
        points.is_some(),
    )?;
    let rows = score_rows(
        exec.as_mut(),
        &model,
        &mut reader,
        args.batch,
        &mut |ids, probs| out.write(ids, probs, points.as_ref()),
    )?;
    out.commit()?;
    super::data_args::report_scoring_notes(reader.odd_cells(), &reader.unused_columns());
    eprintln!(
        "scored {rows} rows in {:.1}s on {device}; wrote {}",
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

/// The scores' id column: the model's id column when the data has it, else `row` (the
/// 1-based data row numbers).
pub fn id_header(reader: &PredictReader, model: &SavedModel) -> String {
    if reader.has_id_column() {
        model
            .preprocessing
            .id_column
            .clone()
            .unwrap_or_else(|| "id".into())
    } else {
        "row".into()
    }
}

/// Takes each batch of scores: the rows' ids and probabilities, in order.
pub type ScoresSink<'s> = dyn FnMut(&[String], &[f32]) -> Result<()> + 's;

/// Scores every row of `reader` with `model`, `batch` rows per forward pass, handing
/// each batch's ids and probabilities to `sink` in order; returns the rows scored.
pub fn score_rows(
    exec: &mut dyn Executor,
    model: &SavedModel,
    reader: &mut PredictReader,
    batch: usize,
    sink: &mut ScoresSink,
) -> Result<usize> {
    let (scorer, first) = Scorer::for_first_batch(exec, model, reader, batch)?;
    score_from(scorer, first, model, reader, sink)
}

/// [`score_rows`] with the scorer ready and the first batch read (`None`: no rows):
/// scores it and every batch after it, `scorer.batch()` rows per forward pass.
pub fn score_from(
    mut scorer: Scorer,
    first: Option<Batch>,
    model: &SavedModel,
    reader: &mut PredictReader,
    sink: &mut ScoresSink,
) -> Result<usize> {
    let mut next = first;
    let mut rows = 0usize;
    while let Some(batch) = next {
        let probs = scorer.score(&model.arrange(batch.x))?;
        sink(&batch.ids, &probs)?;
        rows += probs.len();
        next = reader.next_batch(scorer.batch())?;
    }
    Ok(rows)
}
