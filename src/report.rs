//! The training report: SVG plots (ROC curve, KS curve, loss and AUC per epoch,
//! calibration) drawn with plotters' SVG backend, and a self-contained report.html that
//! shows them inline next to the metrics tables. Every file is written atomically.
//!
//! An evaluation's page (`riskgrad eval --report`, [`eval_report_html`]) is the same
//! page without the training history, plus the fairness table by protected group
//! ([`fairness_html`]) when the evaluation has one.

use crate::error::{Error, Result};
use crate::fairness::{Fairness, Grouping, FOUR_FIFTHS};
use crate::metrics::{rate_curve, Evaluation, RatePoint};
use crate::train::EpochReport;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What the report shows.
pub struct ReportInput<'a> {
    /// The page's heading.
    pub title: String,
    /// Label/value lines shown under the title (data, model, device, ...).
    pub details: Vec<(String, String)>,
    /// A report per epoch trained.
    pub history: &'a [EpochReport],
    /// The rows the epochs' figures are on, e.g. "stopping rows" or "validation rows".
    pub epoch_rows: &'a str,
    /// The epoch whose weights were saved (marked on the training plot).
    pub chosen_epoch: usize,
    /// Validation probabilities of the saved weights, and the labels.
    pub probs: &'a [f32],
    /// The 0/1 labels of those rows.
    pub labels: &'a [f32],
    /// The saved weights' metrics on the validation rows.
    pub evaluation: &'a Evaluation,
    /// Another model scored on the same rows (the logistic-regression challenger): its
    /// name and probabilities, drawn on the ROC plot beside the model's.
    pub challenger: Option<(&'a str, &'a [f32])>,
    /// Cross-validation figures, one row per fold, shown as a table with their mean and
    /// standard deviation.
    pub folds: Option<&'a FoldTable>,
}

/// Figures per cross-validation fold: named columns, one row of values per fold.
#[derive(Clone, Debug, Default)]
pub struct FoldTable {
    /// Column headings, e.g. "AUC", "KS", "log loss".
    pub columns: Vec<String>,
    /// One row per fold, a value per column.
    pub rows: Vec<Vec<f64>>,
}

impl FoldTable {
    /// Mean and (sample) standard deviation of each column over the folds.
    pub fn mean_std(&self) -> Vec<(f64, f64)> {
        (0..self.columns.len())
            .map(|c| {
                let v: Vec<f64> = self.rows.iter().map(|r| r[c]).collect();
                mean_std(&v)
            })
            .collect()
    }
}

/// The mean and sample standard deviation (0 for fewer than two values).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    let var = match values.len() {
        0 | 1 => 0.0,
        _ => values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0),
    };
    (mean, var.sqrt())
}

const SIZE: (u32, u32) = (560, 420);
/// The fine grid lines: faint, so the curves stand out.
const LIGHT: RGBColor = RGBColor(238, 238, 238);
/// Most points drawn for a curve; more would only make the SVG heavy.
const MAX_CURVE_POINTS: usize = 800;

/// The plot file names, in the order report.html shows them.
pub const PLOTS: [&str; 4] = ["roc.svg", "ks.svg", "training.svg", "calibration.svg"];

/// Writes the four SVGs and report.html into `dir`; returns the paths written.
pub fn write_report(dir: &Path, input: &ReportInput) -> Result<Vec<PathBuf>> {
    let mut files = crate::files::FileSet::new();
    let written = stage_report(dir, input, &mut files)?;
    files.commit()?;
    Ok(written)
}

/// Draws the report into `files` (committed by the caller with the rest of a run's
/// files); returns the paths it will have.
pub fn stage_report(
    dir: &Path,
    input: &ReportInput,
    files: &mut crate::files::FileSet,
) -> Result<Vec<PathBuf>> {
    let full = rate_curve(input.probs, input.labels);
    let curve = thin(&full);
    // The KS point is found on the whole curve (thinning could skip it).
    let ks_point = full
        .iter()
        .max_by(|a, b| (a.tpr - a.fpr).total_cmp(&(b.tpr - b.fpr)))
        .copied();
    let svgs = [
        roc_svg(
            &curve,
            input.evaluation.auc,
            challenger_curve(input).as_ref(),
        )?,
        ks_svg(&curve, ks_point, input.probs, input.labels)?,
        training_svg(input.history, input.chosen_epoch, input.epoch_rows)?,
        calibration_svg(input.evaluation)?,
    ];
    let mut written = Vec::new();
    for (name, svg) in PLOTS.iter().zip(&svgs) {
        let path = dir.join(name);
        files.add(&path, svg.as_bytes())?;
        written.push(path);
    }
    let path = dir.join("report.html");
    files.add(&path, html(input, &svgs).as_bytes())?;
    written.push(path);
    Ok(written)
}

/// What an evaluation's page shows.
pub struct EvalReportInput<'a> {
    /// The page's heading.
    pub title: String,
    /// Label/value lines shown under the title (model, data, rows scored, ...).
    pub details: Vec<(String, String)>,
    /// The probabilities scored.
    pub probs: &'a [f32],
    /// The 0/1 labels of those rows.
    pub labels: &'a [f32],
    /// Their metrics.
    pub evaluation: &'a Evaluation,
    /// The fairness check by protected group, when one was asked for.
    pub fairness: Option<&'a Fairness>,
}

/// The self-contained HTML page of an evaluation: details, metrics tables, the ROC, KS
/// and calibration plots inline, and the fairness table when there is one.
pub fn eval_report_html(input: &EvalReportInput) -> Result<String> {
    let full = rate_curve(input.probs, input.labels);
    let curve = thin(&full);
    let ks_point = full
        .iter()
        .max_by(|a, b| (a.tpr - a.fpr).total_cmp(&(b.tpr - b.fpr)))
        .copied();
    let svgs = [
        ("roc", roc_svg(&curve, input.evaluation.auc, None)?),
        ("ks", ks_svg(&curve, ks_point, input.probs, input.labels)?),
        ("calibration", calibration_svg(input.evaluation)?),
    ];
    let mut h = page_start(&input.title, &input.details);
    metrics_tables(&mut h, "Metrics", input.evaluation);
    if let Some(f) = input.fairness {
        h.push_str(&fairness_html(f));
    }
    h.push_str("<h2>Plots</h2>\n");
    for (id, svg) in &svgs {
        let _ = writeln!(h, "<figure id=\"{id}\">{svg}</figure>");
    }
    h.push_str("</body></html>\n");
    Ok(h)
}

/// The fairness section of a report page: a heading, how to read it, and a table
/// (`id="fairness"`) of each group's rows, default rate, mean prediction, approval rate,
/// adverse impact ratio (flagged below 0.8, the most favoured group marked) and AUC.
pub fn fairness_html(f: &Fairness) -> String {
    let mut h = String::new();
    let grouping = match f.grouping {
        Grouping::Values => "one group per value",
        Grouping::QuantileBins => "quantile bins of about equal rows",
    };
    let reference = f.most_favoured.as_deref().map_or(
        "no group has any approval, so the ratios are undefined".to_string(),
        |g| format!("the most favoured group is {}", escape(g)),
    );
    let _ = write!(
        h,
        "<h2>Fairness by {col}</h2>\n<p>{col}: {grouping}, missing values a group of their own. \
An applicant is approved when the predicted probability of default is below {t:.4}. \
The adverse impact ratio is a group's approval rate over the most favoured group's; \
below {FOUR_FIFTHS} it is flagged (the four-fifths rule); {reference}.</p>\n",
        col = escape(&f.column),
        t = f.threshold,
    );
    h.push_str(
        "<table id=\"fairness\"><tr><th class=\"l\">group</th><th>rows</th><th>default rate</th>\
<th>mean predicted</th><th>approval rate</th><th>adverse impact ratio</th><th>AUC</th></tr>",
    );
    for g in &f.groups {
        let mark = if g.most_favoured {
            " (most favoured)"
        } else if g.flagged {
            " ⚑ below 0.8"
        } else {
            ""
        };
        let style = if g.flagged {
            " style=\"background:#fdd\""
        } else {
            ""
        };
        let _ = write!(
            h,
            "<tr{style}><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{mark}</td><td>{}</td></tr>",
            escape(&g.group),
            g.rows,
            num(g.default_rate),
            num(g.mean_predicted),
            num(g.approval_rate),
            num(g.adverse_impact_ratio),
            num(g.auc)
        );
    }
    h.push_str("</table>\n");
    h
}

/// The legend of every riskgrad plot (the report's and the bench page's): a white box
/// with a black border at `at`. Returns plotters' own error, for each caller's message.
pub fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .position(at)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
}

fn plot_err<E: std::fmt::Debug>(e: E) -> Error {
    Error::Internal(format!("drawing a report plot: {e:?}"))
}

/// Every k-th point (and the last), at most `MAX_CURVE_POINTS`.
fn thin(curve: &[RatePoint]) -> Vec<RatePoint> {
    let k = curve.len().div_ceil(MAX_CURVE_POINTS).max(1);
    let mut out: Vec<RatePoint> = curve.iter().step_by(k).copied().collect();
    if let (Some(last), Some(kept)) = (curve.last(), out.last()) {
        if kept != last {
            out.push(*last);
        }
    }
    out
}

/// The challenger's thinned ROC curve, its name and AUC, when there is one.
fn challenger_curve(input: &ReportInput) -> Option<(Vec<RatePoint>, String)> {
    let (name, probs) = input.challenger?;
    let auc = crate::metrics::auc(probs, input.labels);
    Some((
        thin(&rate_curve(probs, input.labels)),
        format!("{name}, AUC {auc:.4}"),
    ))
}

fn roc_svg(
    curve: &[RatePoint],
    auc: f64,
    challenger: Option<&(Vec<RatePoint>, String)>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("ROC curve (validation)", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .light_line_style(LIGHT)
            .x_desc("False positive rate")
            .y_desc("True positive rate")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                ShapeStyle::from(&RGBColor(160, 160, 160)).stroke_width(1),
            ))
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                curve.iter().map(|p| (p.fpr, p.tpr)),
                BLUE.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(format!("model, AUC {auc:.4}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        if let Some((points, label)) = challenger {
            let orange = RGBColor(230, 120, 0);
            chart
                .draw_series(LineSeries::new(
                    points.iter().map(|p| (p.fpr, p.tpr)),
                    orange.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(label.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], orange.stroke_width(2))
                });
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight).map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// TPR and FPR against the share of applicants flagged (highest scores first); the KS
/// statistic is the widest gap, marked with a vertical line.
fn ks_svg(
    curve: &[RatePoint],
    best: Option<RatePoint>,
    probs: &[f32],
    labels: &[f32],
) -> Result<String> {
    let n = probs.len().max(1) as f64;
    let n_pos = labels.iter().filter(|&&y| y > 0.5).count() as f64;
    let n_neg = n - n_pos;
    let flagged = |p: &RatePoint| (p.tpr * n_pos + p.fpr * n_neg) / n;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("KS curve (validation)", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .light_line_style(LIGHT)
            .x_desc("Share of applicants flagged (highest scores first)")
            .y_desc("Cumulative share")
            .draw()
            .map_err(plot_err)?;
        let red = RGBColor(200, 40, 40);
        let green = RGBColor(30, 140, 60);
        chart
            .draw_series(LineSeries::new(
                curve.iter().map(|p| (flagged(p), p.tpr)),
                red.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label("defaults caught (TPR)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], red.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(
                curve.iter().map(|p| (flagged(p), p.fpr)),
                green.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label("non-defaults flagged (FPR)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], green.stroke_width(2)));
        if let Some(b) = best {
            let x = flagged(&b);
            chart
                .draw_series(LineSeries::new(
                    [(x, b.fpr), (x, b.tpr)],
                    BLACK.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(format!(
                    "KS {:.4} at score >= {:.4}",
                    b.tpr - b.fpr,
                    b.threshold
                ))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight).map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Training loss (left) and the AUC on `rows` (right) per epoch; the saved epoch is
/// marked.
fn training_svg(history: &[EpochReport], chosen: usize, rows: &str) -> Result<String> {
    let auc_title = format!("AUC per epoch ({rows})");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0 * 2, SIZE.1)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (left, right) = root.split_horizontally(SIZE.0);
        let last = history.len().max(2) as f64;
        // Legends go where the curve usually is not: loss falls, AUC rises.
        let series = [
            (
                &left,
                "Training loss per epoch",
                "loss",
                history.iter().map(|r| r.train_loss).collect::<Vec<_>>(),
                BLUE,
                SeriesLabelPosition::UpperRight,
            ),
            (
                &right,
                auc_title.as_str(),
                "AUC",
                history.iter().map(|r| r.validation.auc).collect::<Vec<_>>(),
                RGBColor(200, 40, 40),
                SeriesLabelPosition::LowerRight,
            ),
        ];
        for (area, title, what, values, color, legend_at) in series {
            let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
            let (lo, hi) = finite
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                    (l.min(v), h.max(v))
                });
            let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
            let pad = ((hi - lo) * 0.1).max(1e-3);
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(42)
                .y_label_area_size(60)
                .build_cartesian_2d(0.5f64..last + 0.5, (lo - pad)..(hi + pad))
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .light_line_style(LIGHT)
                .x_desc("epoch")
                .y_desc(what)
                .x_labels(history.len().clamp(2, 12))
                .x_label_formatter(&|v| format!("{}", v.round() as i64))
                .draw()
                .map_err(plot_err)?;
            let points: Vec<(f64, f64)> = history
                .iter()
                .zip(&values)
                .filter(|(_, v)| v.is_finite())
                .map(|(r, &v)| (r.epoch as f64, v))
                .collect();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(plot_err)?;
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(plot_err)?;
            if let Some(&p) = points.iter().find(|p| p.0 as usize == chosen) {
                chart
                    .draw_series([Circle::new(p, 7, BLACK.stroke_width(2))])
                    .map_err(plot_err)?
                    .label(format!("saved: epoch {chosen}"))
                    .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.stroke_width(2)));
                draw_legend(&mut chart, legend_at).map_err(plot_err)?;
            }
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Observed default rate against the mean predicted probability, per score decile.
fn calibration_svg(ev: &Evaluation) -> Result<String> {
    let top = ev
        .calibration
        .iter()
        .flat_map(|b| [b.mean_score, b.default_rate])
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let top = (top * 1.1).clamp(0.05, 1.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Calibration by score decile (validation)",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..top, 0f64..top)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .light_line_style(LIGHT)
            .x_desc("Mean predicted probability")
            .y_desc("Observed default rate")
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (top, top)],
                ShapeStyle::from(&RGBColor(160, 160, 160)).stroke_width(1),
            ))
            .map_err(plot_err)?
            .label("perfect calibration")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RGBColor(160, 160, 160)));
        let points: Vec<(f64, f64)> = ev
            .calibration
            .iter()
            .map(|b| (b.mean_score, b.default_rate))
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                BLUE.stroke_width(2),
            ))
            .map_err(plot_err)?;
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))
            .map_err(plot_err)?
            .label("model (one point per decile)")
            .legend(|(x, y)| Circle::new((x + 10, y), 4, BLUE.filled()));
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft).map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// `s` as HTML text (also inside an attribute's quotes): `&`, `<`, `>` and `"` escaped.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "n/a".into()
    }
}

/// The page's start: its head (title, styles), the heading and the details table.
fn page_start(title: &str, details: &[(String, String)]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}}\
table{{border-collapse:collapse;margin:8px 24px 16px 0;display:inline-table;vertical-align:top}}\
th,td{{border:1px solid #bbb;padding:3px 10px;text-align:right}}th{{background:#eee}}\
td.l,th.l{{text-align:left}}figure{{display:inline-block;margin:8px}}\
figure svg{{border:1px solid #ddd}}h2{{margin-top:28px}}\
</style></head><body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    h.push_str("<table>");
    for (k, v) in details {
        let _ = write!(
            h,
            "<tr><th class=\"l\">{}</th><td class=\"l\">{}</td></tr>",
            escape(k),
            escape(v)
        );
    }
    h.push_str("</table>\n");
    h
}

/// The metrics table, the confusion matrix and the calibration table under `heading`.
fn metrics_tables(h: &mut String, heading: &str, ev: &Evaluation) {
    let _ = write!(
        h,
        "<h2>{}</h2>\n<table id=\"metrics\"><tr><th class=\"l\">metric</th><th>value</th></tr>",
        escape(heading)
    );
    let ci = ev
        .auc_ci95
        .map_or("n/a".to_string(), |(lo, hi)| format!("{lo:.4} – {hi:.4}"));
    let threshold_note = if ev.threshold_is_max_ks {
        " (max KS)"
    } else {
        ""
    };
    let rows: [(&str, String); 12] = [
        ("rows", ev.rows.to_string()),
        ("defaults", ev.positives.to_string()),
        ("AUC", num(ev.auc)),
        ("AUC 95% CI (bootstrap)", ci),
        ("KS", num(ev.ks)),
        ("Gini", num(ev.gini)),
        ("log loss", num(ev.log_loss)),
        ("Brier score", num(ev.brier)),
        ("threshold", format!("{:.4}{threshold_note}", ev.threshold)),
        ("accuracy", num(ev.accuracy)),
        ("precision", num(ev.precision)),
        (
            "recall / F1",
            format!("{} / {}", num(ev.recall), num(ev.f1)),
        ),
    ];
    for (k, v) in rows {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{k}</td><td>{}</td></tr>",
            escape(&v)
        );
    }
    let c = &ev.confusion;
    let _ = write!(
        h,
        "</table>\n<table id=\"confusion\"><tr><th></th><th>predicted default</th><th>predicted no default</th></tr>\
<tr><th class=\"l\">defaulted</th><td>{}</td><td>{}</td></tr><tr><th class=\"l\">did not default</th><td>{}</td><td>{}</td></tr></table>\n",
        c.true_positives, c.false_negatives, c.false_positives, c.true_negatives
    );
    h.push_str("<table id=\"calibration\"><tr><th>decile</th><th>rows</th><th>scores</th><th>mean predicted</th><th>observed rate</th></tr>");
    for b in &ev.calibration {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.4} – {:.4}</td><td>{}</td><td>{}</td></tr>",
            b.bin,
            b.rows,
            b.min_score,
            b.max_score,
            num(b.mean_score),
            num(b.default_rate)
        );
    }
    h.push_str("</table>\n");
}

/// The page: title, details, metrics tables and the plots inline (so the file can be
/// mailed or archived alone).
fn html(input: &ReportInput, svgs: &[String; 4]) -> String {
    let mut h = page_start(&input.title, &input.details);
    metrics_tables(&mut h, "Validation metrics", input.evaluation);
    h.push_str("<h2>Plots</h2>\n");
    for (name, svg) in PLOTS.iter().zip(svgs) {
        // Plotters writes an XML-less <svg> element, which HTML takes inline as it is.
        let _ = writeln!(
            h,
            "<figure id=\"{}\">{svg}</figure>",
            name.trim_end_matches(".svg")
        );
    }
    if let Some(folds) = input.folds {
        h.push_str("<h2>Cross-validation</h2>\n<table id=\"folds\"><tr><th>fold</th>");
        for c in &folds.columns {
            let _ = write!(h, "<th>{}</th>", escape(c));
        }
        h.push_str("</tr>");
        for (i, row) in folds.rows.iter().enumerate() {
            let _ = write!(h, "<tr><td>{}</td>", i + 1);
            for v in row {
                let _ = write!(h, "<td>{}</td>", num(*v));
            }
            h.push_str("</tr>");
        }
        h.push_str("<tr><th>mean ± std</th>");
        for (mean, std) in folds.mean_std() {
            let _ = write!(h, "<th>{} ± {}</th>", num(mean), num(std));
        }
        h.push_str("</tr></table>\n");
    }
    let _ = write!(
        h,
        "<h2>Epochs</h2>\n<p>AUC, KS and log loss on the {}.</p>\n<table id=\"epochs\"><tr><th>epoch</th><th>train loss</th><th>AUC</th><th>KS</th><th>log loss</th><th>seconds</th></tr>",
        escape(input.epoch_rows)
    );
    for r in input.history {
        let mark = if r.epoch == input.chosen_epoch {
            " (saved)"
        } else {
            ""
        };
        let _ = write!(
            h,
            "<tr><td>{}{mark}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
            r.epoch,
            num(r.train_loss),
            num(r.validation.auc),
            num(r.validation.ks),
            num(r.validation.log_loss),
            r.seconds
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thin_keeps_ends_and_bounds_size() {
        let curve: Vec<RatePoint> = (0..5000)
            .map(|i| RatePoint {
                threshold: i as f32,
                tpr: i as f64 / 4999.0,
                fpr: 0.0,
            })
            .collect();
        let t = thin(&curve);
        assert!(t.len() <= MAX_CURVE_POINTS + 1);
        assert_eq!(t.first(), curve.first());
        assert_eq!(t.last(), curve.last());
        assert_eq!(thin(&curve[..3]), curve[..3].to_vec());
    }

    #[test]
    fn escape_html() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
