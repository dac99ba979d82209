//! `riskgrad monitor --html`: one self-contained page (no scripts, no external files)
//! with the PSI and CSI table and, for the score and every column, an inline SVG bar
//! chart of each bin's share of the training rows beside its share of the new rows.

use super::{Band, Shift, StabilityReport, SHIFTED_ABOVE, WATCH_FROM};
use crate::report::escape;
use std::fmt::Write as _;

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 96.0;
const TRAINING_COLOR: &str = "#a0a0a0";
const NEW_COLOR: &str = "#1f63b4";
/// Longest bin label drawn under a chart (the full label is in the bar's tooltip).
const LABEL_CHARS: usize = 16;

/// The page: `title`, the `details` lines (model, data, rows), the table of indices and
/// a chart per distribution.
pub fn page(report: &StabilityReport, title: &str, details: &[(String, String)]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}}\
table{{border-collapse:collapse;margin:8px 24px 16px 0}}\
th,td{{border:1px solid #bbb;padding:3px 10px;text-align:right}}th{{background:#eee}}\
td.l,th.l{{text-align:left}}figure{{display:inline-block;margin:8px}}\
figure svg{{border:1px solid #ddd}}.stable{{color:#1a7f37}}.watch{{color:#b35900}}\
.shifted{{color:#c62828;font-weight:bold}}\
</style></head><body>\n<h1>{}</h1>\n<table>\n",
        escape(title),
        escape(title)
    );
    for (k, v) in details {
        let _ = writeln!(
            h,
            "<tr><th class=\"l\">{}</th><td class=\"l\">{}</td></tr>",
            escape(k),
            escape(v)
        );
    }
    let _ = write!(
        h,
        "</table>\n<p>Population stability index over each distribution's bins: \
PSI = &Sigma; (new &minus; training) &middot; ln(new / training), each share below 0.0001 taken \
as 0.0001. Below {WATCH_FROM} stable, {WATCH_FROM} to {SHIFTED_ABOVE} watch, above \
{SHIFTED_ABOVE} shifted. Numeric columns are binned at their training deciles, categorical \
ones by the model's categories; both have a missing bin.</p>\n\
<table>\n<tr><th class=\"l\">distribution</th><th class=\"l\">kind</th><th>bins</th>\
<th>index</th><th class=\"l\">band</th></tr>\n"
    );
    for shift in std::iter::once(&report.score).chain(&report.columns) {
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{:.4}</td>\
<td class=\"l {band}\">{band}</td></tr>",
            escape(&shift.name),
            match shift.kind {
                "score" => "score (PSI)",
                kind => kind,
            },
            shift.bins.len(),
            shift.index,
            band = shift.band.name(),
        );
    }
    h.push_str("</table>\n<h2>Training and new shares per bin</h2>\n");
    for shift in std::iter::once(&report.score).chain(&report.columns) {
        let _ = writeln!(h, "<figure>{}</figure>", chart(shift));
    }
    h.push_str("</body></html>\n");
    h
}

/// A bar chart of one distribution's bins: the training share and the new share side by
/// side.
pub fn chart(shift: &Shift) -> String {
    let n = shift.bins.len().max(1) as f64;
    let top = shift
        .bins
        .iter()
        .flat_map(|b| [b.training, b.new])
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let top = (top * 1.1).clamp(0.05, 1.0);
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let y = |v: f64| TOP + plot_h * (1.0 - (v / top).clamp(0.0, 1.0));
    let group = plot_w / n;
    let which = match shift.kind {
        "score" => "PSI",
        _ => "CSI",
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">\
<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
<text x=\"{LEFT}\" y=\"18\" font-size=\"14\">{} ({}): {which} {:.4}, <tspan class=\"{band}\" fill=\"{color}\">{band}</tspan></text>",
        escape(&shift.name),
        shift.kind,
        shift.index,
        band = shift.band.name(),
        color = band_color(shift.band),
    );
    // Legend.
    for (i, (name, color)) in [("training", TRAINING_COLOR), ("new", NEW_COLOR)]
        .into_iter()
        .enumerate()
    {
        let x = WIDTH - RIGHT - 150.0 + 75.0 * i as f64;
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"26\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
<text x=\"{}\" y=\"35\">{name}</text>",
            x + 14.0
        );
    }
    // Grid and share axis.
    for k in 0..=4 {
        let v = top * k as f64 / 4.0;
        let yy = y(v);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#e4e4e4\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.0}%</text>",
            WIDTH - RIGHT,
            LEFT - 4.0,
            yy + 4.0,
            100.0 * v
        );
    }
    for (i, bin) in shift.bins.iter().enumerate() {
        let x0 = LEFT + group * i as f64;
        for (j, (share, color, who)) in [
            (bin.training, TRAINING_COLOR, "training"),
            (bin.new, NEW_COLOR, "new"),
        ]
        .into_iter()
        .enumerate()
        {
            let x = x0 + group * (0.1 + 0.4 * j as f64);
            let yy = y(share);
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{yy:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\">\
<title>{}: {who} {:.2}%</title></rect>",
                group * 0.38,
                TOP + plot_h - yy,
                escape(&bin.bin),
                100.0 * share
            );
        }
        let (cx, cy) = (x0 + group / 2.0, TOP + plot_h + 10.0);
        let _ = write!(
            s,
            "<text x=\"{cx:.1}\" y=\"{cy:.1}\" text-anchor=\"end\" transform=\"rotate(-40 {cx:.1} {cy:.1})\">{}</text>",
            escape(&shorten(&bin.bin))
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#444\"/></svg>",
        TOP + plot_h,
        WIDTH - RIGHT
    );
    s
}

fn band_color(band: Band) -> &'static str {
    match band {
        Band::Stable => "#1a7f37",
        Band::Watch => "#b35900",
        Band::Shifted => "#c62828",
    }
}

/// At most [`LABEL_CHARS`] characters, an ellipsis marking a cut.
fn shorten(label: &str) -> String {
    match label.char_indices().nth(LABEL_CHARS) {
        Some((at, _)) => format!("{}…", &label[..at]),
        None => label.to_string(),
    }
}

/// Text safe inside HTML and SVG elements and attributes.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::stability::BinShare;

    #[test]
    fn a_chart_has_two_bars_per_bin_and_escapes_names() {
        let shift = Shift {
            name: "a<b".into(),
            kind: "categorical",
            index: 0.3,
            band: Band::Shifted,
            bins: vec![
                BinShare {
                    bin: "x & y".into(),
                    training: 0.5,
                    new: 0.1,
                },
                BinShare {
                    bin: "missing".into(),
                    training: 0.5,
                    new: 0.9,
                },
            ],
        };
        let svg = chart(&shift);
        assert_eq!(svg.matches("<title>").count(), 4);
        assert!(svg.contains("a&lt;b") && svg.contains("x &amp; y"));
        assert!(!svg.contains("a<b"));
        assert_eq!(shorten("abcdefghijklmnopqrstuvwxyz"), "abcdefghijklmnop…");
    }
}
