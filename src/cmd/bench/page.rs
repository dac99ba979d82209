//! The HTML page of `riskgrad bench all`: matmul GFLOP/s against size per device, a
//! roofline per device (its measured fma and copy peaks as the roof, each matmul, conv
//! and pool case as a point), training rows/s per model and device, and every case in a
//! table. The plots are SVG drawn with plotters, inline in one self-contained file.

use super::suites::{device_label, Case, Report};
use plotters::prelude::*;
use riskgrad::report::{draw_legend, escape};
use riskgrad::{Error, Result};
use std::fmt::Write as _;

const SIZE: (u32, u32) = (640, 420);
/// The page's title: `bench all` replaces an index.html only when it holds this.
pub const TITLE: &str = "<title>riskgrad bench all</title>";
const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(230, 120, 0),
    RGBColor(44, 160, 44),
    RGBColor(200, 40, 40),
];

fn plot_err<E: std::fmt::Debug>(e: E) -> Error {
    Error::Internal(format!("drawing a bench plot: {e:?}"))
}

/// The page for `report`.
pub fn html(report: &Report) -> Result<String> {
    let devices = devices(&report.cases);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{TITLE}\n<style>\
body{{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}}\
table{{border-collapse:collapse;margin:8px 0 16px}}th,td{{border:1px solid #bbb;padding:3px 8px;text-align:right}}\
th{{background:#eee}}td.l,th.l{{text-align:left}}figure{{display:inline-block;margin:8px}}\
figure svg{{border:1px solid #ddd}}</style></head><body>\n<h1>riskgrad bench all</h1>\n\
<p>riskgrad {} on {} ({} cores, {}); {} cases; command <code>{}</code></p>\n",
        escape(&report.riskgrad.version),
        escape(report.machine.cpu.as_deref().unwrap_or("an unknown CPU")),
        report.machine.cores,
        escape(&report.machine.os),
        report.cases.len(),
        escape(&report.command),
    );
    h.push_str("<h2>Matmul</h2>\n");
    match matmul_svg(&report.cases, &devices)? {
        Some(svg) => figure(&mut h, &svg),
        None => h.push_str("<p>No matmul cases were run.</p>\n"),
    }
    h.push_str("<h2>Roofline</h2>\n<p>The roof is the device's measured fma GFLOP/s and, below the ridge, its copy GB/s times the arithmetic intensity; pool's rate is its GB/s times its intensity (a compare or an add counted as a flop).</p>\n");
    for device in &devices {
        match roofline_svg(&report.cases, device)? {
            Some(svg) => figure(&mut h, &svg),
            None => {
                let _ = writeln!(
                    h,
                    "<p>{}: no measured peaks, so no roofline.</p>",
                    escape(device)
                );
            }
        }
    }
    h.push_str("<h2>Training</h2>\n");
    match training_svg(&report.cases)? {
        Some(svg) => figure(&mut h, &svg),
        None => h.push_str("<p>No training cases were run.</p>\n"),
    }
    h.push_str("<h2>Every case</h2>\n<table><tr><th class=\"l\">suite</th><th class=\"l\">kernel</th><th class=\"l\">variant</th><th class=\"l\">shape</th><th class=\"l\">device</th><th>rate</th><th class=\"l\">unit</th><th>% of peak</th><th>median ms</th><th>samples</th><th class=\"l\">clock</th></tr>\n");
    for c in &report.cases {
        let cell = |v: Option<f64>, digits: usize| match v {
            Some(v) if v.is_finite() => format!("{v:.digits$}"),
            _ => "—".into(),
        };
        let status = if c.status == "ok" {
            cell(c.rate, 2)
        } else {
            "WRONG".into()
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{status}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            escape(&c.suite),
            escape(&c.kernel),
            escape(&c.variant),
            escape(&c.shape),
            escape(&device_label(&c.device)),
            escape(&c.unit),
            cell(c.percent_of_peak, 1),
            cell(c.stats.as_ref().map(|s| s.median * 1e3), 3),
            c.stats.as_ref().map_or("—".into(), |s| s.samples.to_string()),
            escape(&c.clock),
        );
    }
    h.push_str("</table>\n</body></html>\n");
    Ok(h)
}

fn figure(h: &mut String, svg: &str) {
    let _ = writeln!(h, "<figure>{svg}</figure>");
}

/// Each device's label, in the order the cases first name it.
fn devices(cases: &[Case]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in cases {
        let label = device_label(&c.device);
        if !out.contains(&label) {
            out.push(label);
        }
    }
    out
}

/// Timed cases of `suite` on `device`, with their rates.
fn timed<'a>(
    cases: &'a [Case],
    suite: &'a str,
    device: &'a str,
) -> impl Iterator<Item = (&'a Case, f64)> {
    cases.iter().filter_map(move |c| {
        let rate = c.rate.filter(|r| r.is_finite() && *r > 0.0)?;
        (c.suite == suite && device_label(&c.device) == device).then_some((c, rate))
    })
}

/// GFLOP/s against the matrix size, a line per device.
fn matmul_svg(cases: &[Case], devices: &[String]) -> Result<Option<String>> {
    let lines: Vec<(String, Vec<(f64, f64)>)> = devices
        .iter()
        .map(|d| {
            let points = timed(cases, "matmul", d)
                .filter_map(|(c, rate)| {
                    let n: f64 = c.shape.split('x').next()?.parse().ok()?;
                    Some((n.log2(), rate))
                })
                .collect();
            (d.clone(), points)
        })
        .filter(|(_, p): &(String, Vec<(f64, f64)>)| !p.is_empty())
        .collect();
    let all: Vec<(f64, f64)> = lines.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    if all.is_empty() {
        return Ok(None);
    }
    let (lo, hi) = all
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let top = all.iter().fold(0f64, |m, p| m.max(p.1)) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Square f32 matmul", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(60)
            .build_cartesian_2d(lo - 0.5..hi + 0.5, 0f64..top)
            .map_err(plot_err)?;
        // x is log2 of the size: equal steps for the doubling sizes.
        chart
            .configure_mesh()
            .x_labels(((hi - lo) as usize + 2).max(2))
            .x_label_formatter(&|v| format!("{}", v.exp2().round()))
            .x_desc("n (n×n times n×n)")
            .y_desc("GFLOP/s")
            .draw()
            .map_err(plot_err)?;
        for (k, (device, points)) in lines.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(device.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(plot_err)?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft).map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(Some(svg))
}

/// The device's roofline: `min(fma, copy · intensity)` and each matmul, conv and pool
/// case at (intensity, GFLOP/s). `None` without both peaks.
fn roofline_svg(cases: &[Case], device: &str) -> Result<Option<String>> {
    // The f32 fma peak (not f16's), and the copy peak (its dtype is the word it moves).
    let peak = |kernel: &str| {
        cases.iter().find_map(|c| {
            (c.suite == "peak"
                && c.kernel == kernel
                && (kernel != "fma" || c.dtype == "f32")
                && device_label(&c.device) == device)
                .then_some(c.rate)
                .flatten()
        })
    };
    let (Some(fma), Some(copy)) = (peak("fma"), peak("copy")) else {
        return Ok(None);
    };
    let mut groups: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
    for suite in ["matmul", "conv", "pool"] {
        let points: Vec<(f64, f64)> = timed(cases, suite, device)
            .filter_map(|(c, rate)| {
                let i = c.intensity.filter(|i| *i > 0.0)?;
                // Pool's rate is bytes: its flops are the bytes times the intensity.
                let gflops = if c.unit == "GB/s" { rate * i } else { rate };
                Some((i, gflops))
            })
            .collect();
        if !points.is_empty() {
            groups.push((suite, points));
        }
    }
    let xs = groups.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let (x_lo, x_hi) = xs.fold((fma / copy, fma / copy), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let (x_lo, x_hi) = (x_lo / 4.0, x_hi * 4.0);
    let ys: Vec<f64> = groups
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .collect();
    let y_lo = ys.iter().copied().fold(copy * x_lo, f64::min) / 2.0;
    // A point above the roof (a ceiling measured low) stays on the plot.
    let y_hi = ys.iter().copied().fold(fma, f64::max) * 2.0;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Roofline: {device}"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(60)
            .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo.max(1e-6)..y_hi).log_scale())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("arithmetic intensity, flop/byte")
            .y_desc("GFLOP/s")
            .draw()
            .map_err(plot_err)?;
        let roof: Vec<(f64, f64)> = (0..=64)
            .map(|k| {
                let x = x_lo * (x_hi / x_lo).powf(k as f64 / 64.0);
                (x, fma.min(copy * x))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(roof, BLACK.stroke_width(2)))
            .map_err(plot_err)?
            .label(format!("roof: fma {fma:.1} GFLOP/s, copy {copy:.2} GB/s"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        for (k, (suite, points)) in groups.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(plot_err)?
                .label(*suite)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight).map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(Some(svg))
}

/// Training rows/s, a bar per model and device.
fn training_svg(cases: &[Case]) -> Result<Option<String>> {
    let bars: Vec<(String, f64)> = cases
        .iter()
        .filter(|c| c.suite == "train")
        .filter_map(|c| {
            let rate = c.rate.filter(|r| r.is_finite() && *r > 0.0)?;
            Some((format!("{} · {}", c.kernel, device_label(&c.device)), rate))
        })
        .collect();
    if bars.is_empty() {
        return Ok(None);
    }
    let top = bars.iter().fold(0f64, |m, b| m.max(b.1)) * 1.15;
    let height = 80 + 36 * bars.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (SIZE.0 + 200, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption("Training throughput (batch 256, Adam)", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(260)
            .build_cartesian_2d(0f64..top, (0..bars.len()).into_segmented())
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("rows/s")
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, rate))| {
                Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (*rate, SegmentValue::Exact(i + 1)),
                    ],
                    COLORS[0].mix(0.8).filled(),
                )
            }))
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    Ok(Some(svg))
}
