//! Scale: a 1,000,000-row, 50-column CSV (numbers, text categories, missing cells, an id
//! column, a yes/no target) read and prepared, printing the reading speed and the peak
//! memory next to the size of the feature matrix it produced. A measurement, not a
//! pass/fail timing test, so it is ignored by default:
//!
//!     cargo test --release --test it data_scale -- --ignored --nocapture
//!
//! `RISKGRAD_SCALE_ROWS` changes the row count; the file is written once to the temp dir
//! and reused.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use riskgrad::data::{prepare_table, read_table, PredictReader, PrepareOptions, Values};
use riskgrad::rng::Rng;

const NUMERIC: usize = 38;
const TEXT: usize = 10;

/// Peak resident memory of this process so far (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Writes the file unless it is there: `id`, 38 numeric columns (half of them heavy-tailed
/// amounts, 2 % missing as empty or `NA`), 10 text columns (3 to 30 levels, some rare, 1 %
/// missing), and `default` (yes/no, about 20 % yes, depending on a few columns).
fn generate(rows: usize) -> PathBuf {
    let path = std::env::temp_dir().join(format!("riskgrad-scale-{rows}x50.csv"));
    if path.exists() {
        return path;
    }
    let tmp = path.with_extension("csv.part");
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).unwrap());
    let mut header = vec!["id".to_string()];
    header.extend((0..NUMERIC).map(|j| {
        if j % 2 == 0 {
            format!("AMOUNT_{j}")
        } else {
            format!("X_{j}")
        }
    }));
    header.extend((0..TEXT).map(|j| format!("CAT_{j}")));
    header.push("default".into());
    writeln!(w, "{}", header.join(",")).unwrap();
    let mut rng = Rng::new(5);
    let mut line = String::with_capacity(512);
    for r in 0..rows {
        line.clear();
        line.push_str(&format!("C{r:07}"));
        let mut score = 0.0;
        for j in 0..NUMERIC {
            line.push(',');
            let u = rng.uniform();
            if u < 0.01 {
                continue;
            } else if u < 0.02 {
                line.push_str("NA");
                continue;
            }
            let z = rng.normal();
            if j < 4 {
                score += z;
            }
            if j % 2 == 0 {
                line.push_str(&format!("{:.2}", (z * 1.5 + 7.0).exp()));
            } else {
                line.push_str(&format!("{:.4}", z));
            }
        }
        for j in 0..TEXT {
            line.push(',');
            if rng.uniform() < 0.01 {
                continue;
            }
            let levels = 3 + 3 * j;
            // Skewed: low levels common, high ones rare.
            let k = ((rng.uniform().powi(3)) * levels as f64) as usize;
            if j == 0 && k == 0 {
                score += 1.0;
            }
            line.push_str(&format!("L{j}_{k}"));
        }
        let p = 1.0 / (1.0 + (-(score - 1.8)).exp());
        line.push_str(if rng.uniform() < p { ",yes" } else { ",no" });
        writeln!(w, "{line}").unwrap();
    }
    w.flush().unwrap();
    drop(w);
    std::fs::rename(&tmp, &path).unwrap();
    path
}

#[test]
#[ignore = "a measurement on a generated 1M x 50 file (about 400 MB); run with --ignored --nocapture"]
fn read_and_prepare_1m_by_50() {
    let rows: usize = std::env::var("RISKGRAD_SCALE_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let t = Instant::now();
    let path = generate(rows);
    let bytes = std::fs::metadata(&path).unwrap().len();
    eprintln!(
        "file {} ({:.0} MB), ready in {:.1} s",
        path.display(),
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let rss_start = peak_rss_mib();

    let opts = PrepareOptions {
        target: "default".parse().unwrap(),
        ..Default::default()
    };
    let t = Instant::now();
    let table = read_table(&path, &opts).unwrap();
    let read_s = t.elapsed().as_secs_f64();
    let rss_read = peak_rss_mib();
    assert_eq!(table.n_rows, rows);
    let table_bytes: usize = table
        .columns
        .iter()
        .map(|c| match &c.values {
            Values::Numeric(v) => v.len() * 4,
            Values::Text(t) => t.codes.len() * 4,
            _ => 0,
        })
        .sum();

    let t = Instant::now();
    let p = prepare_table(table, &opts).unwrap();
    let prep_s = t.elapsed().as_secs_f64();
    let rss_prep = peak_rss_mib();
    let features = p.n_features();
    let matrix_mib = ((p.train.x.len() + p.val.x.len()) * 4) as f64 / 1048576.0;
    assert_eq!(p.auto_dropped.len(), 1, "the id column is found");
    assert_eq!(p.train.rows() + p.val.rows(), rows);

    eprintln!(
        "read:    {read_s:.2} s, {:.0} rows/s, {:.1} MB/s of CSV",
        rows as f64 / read_s,
        bytes as f64 / 1e6 / read_s
    );
    eprintln!("prepare: {prep_s:.2} s (schema, split, fit, transform) -> {features} features");
    eprintln!(
        "memory:  raw table {:.0} MiB; feature matrix (train + val) {matrix_mib:.0} MiB; peak RSS {rss_start:.0} MiB before reading, {rss_read:.0} after reading, {rss_prep:.0} after preparing = {:.2} x the feature matrix",
        table_bytes as f64 / 1048576.0,
        rss_prep / matrix_mib
    );
    // Prediction streams the same file through the fitted preprocessing, batch by batch.
    let pre = p.preprocessor.clone();
    drop(p);
    let t = Instant::now();
    let mut reader = PredictReader::open(&path, &pre).unwrap();
    let mut n = 0;
    while let Some(b) = reader.next_batch(8192).unwrap() {
        n += b.rows();
    }
    let pred_s = t.elapsed().as_secs_f64();
    assert_eq!(n, rows);
    eprintln!("predict: {pred_s:.2} s to stream every row through the preprocessing in batches of 8192, {:.0} rows/s", rows as f64 / pred_s);
    assert!(
        rss_prep < 2.0 * matrix_mib + 64.0,
        "peak {rss_prep:.0} MiB is more than two feature matrices ({matrix_mib:.0} MiB each)"
    );
}
