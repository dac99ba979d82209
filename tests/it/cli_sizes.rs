//! Sizes come from the data, never from a flag alone: a file smaller than the default
//! batch trains with a note, scoring plans never hold more rows than the file has, absurd
//! sizes are refused with the flag named, and a refused flag leaves nothing behind.

use crate::common::fixture;
use crate::common::{riskgrad, stderr, train_refused_for_size, train_small};
use crate::lifecycle_common::temp_dir;

#[test]
fn small_files_train_with_the_default_batch_and_huge_batches_score_them() {
    let dir = temp_dir("sizes");
    let model = dir.join("model");
    let data = fixture("credit_mixed.csv");
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    // 40 rows, 32 for training: under the default batch of 256.
    let out = riskgrad(&[
        "train",
        "--data",
        d,
        "--device",
        "cpu",
        "--hidden",
        "4",
        "--epochs",
        "2",
        "--early-stop",
        "off",
        "--out",
        m,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("batch 32 (every training row)"),
        "{}",
        stderr(&out)
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["training"]["batch"], 32, "{config}");

    // A batch of ten million on a 40-row file plans 40 rows (it used to reserve
    // gigabytes); the scores are those of a batch that fits.
    let scores = |batch: &str, name: &str| {
        let path = dir.join(name);
        let out = riskgrad(&[
            "predict",
            "--model",
            m,
            "--data",
            d,
            "--device",
            "cpu",
            "--batch",
            batch,
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::read_to_string(path).unwrap()
    };
    assert_eq!(scores("10000000", "huge.csv"), scores("40", "fits.csv"));
    let out = riskgrad(&[
        "eval", "--model", m, "--data", d, "--device", "cpu", "--batch", "10000000",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Explaining with an absurd number of steps is refused before any work.
    let out = riskgrad(&[
        "explain",
        "--model",
        m,
        "--data",
        d,
        "--device",
        "cpu",
        "--steps",
        "100000000",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--steps") && !stderr(&out).contains("panicked"));
}

#[test]
fn a_refused_flag_creates_no_output_directory() {
    let dir = temp_dir("refused");
    for flags in [
        &["--batch", "0"][..],
        &["--epochs", "0"],
        &["--lr", "-1"],
        &["--device", "no-such-adapter-anywhere"],
        &["--batch", "100000000"],
        &["--checkpoint-every", "0"],
        &["--checkpoint-every", "10 minutes"],
        &["--checkpoint-every", "0s"],
        &["--stop-split", "1.5"],
        &["--early-stop", "0"],
        // Leaves one class to fit on: it trained 100 epochs on one row before.
        &["--stop-split", "0.999"],
        // Broke the challenger's Newton solve after the network had trained (exit 1).
        &["--pos-weight", "1e30"],
    ] {
        let out_dir = dir.join("run");
        let out = riskgrad(
            &[
                &[
                    "train",
                    "--data",
                    fixture("credit_mixed.csv").to_str().unwrap(),
                ][..],
                flags,
                &["--out", out_dir.to_str().unwrap()],
            ]
            .concat(),
        );
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", stderr(&out));
        assert!(!out_dir.exists(), "{flags:?} left {}", out_dir.display());
    }
}

#[test]
fn memory_that_cannot_be_had_is_an_error_not_an_abort() {
    let e = riskgrad::engine::exec::zeroed_words(usize::MAX / 8, "a test tensor").unwrap_err();
    assert!(e.to_string().contains("a test tensor"), "{e}");
    assert_eq!(
        riskgrad::engine::exec::zeroed_words(5, "small").unwrap(),
        vec![0.0; 5]
    );
}

/// The system's available memory in bytes (`MemAvailable`).
#[cfg(target_os = "linux")]
fn available_memory() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kib * 1024
}

/// Linux overcommits, so an allocation beyond the free memory can succeed and the
/// process be killed when it is touched: where the system reports its available memory,
/// a request beyond it is refused before anything is allocated.
#[test]
#[cfg(target_os = "linux")]
fn memory_beyond_what_is_available_is_refused_before_it_is_touched() {
    use riskgrad::engine::exec::ensure_memory_for;
    let beyond = available_memory() + (1 << 30);
    let e = ensure_memory_for(beyond, "the gradients").unwrap_err();
    assert!(e.to_string().contains("the gradients"), "{e}");
    ensure_memory_for(16 << 20, "a small tensor").unwrap();
}

/// A layer each of whose [batch, width] tensors fits the available memory but whose
/// training run does not: refused before the first buffer is zeroed (an error naming
/// the intermediate tensors, the sum of everything checked up front), not after filling
/// the machine one tensor at a time until one is refused ("an intermediate tensor").
#[test]
#[cfg(target_os = "linux")]
fn a_run_beyond_the_available_memory_is_refused_before_anything_is_zeroed() {
    // One [256, hidden] tensor takes half the available memory.
    let hidden = available_memory() / (4 * 256 * 2);
    let dir = temp_dir("run-too-large");
    let data = dir.join("wide.csv");
    crate::common::two_feature_table(&data, 600, 5);
    let err = train_refused_for_size(&dir, "cpu", &data, &hidden.to_string(), &[]);
    assert!(
        err.contains("the intermediate tensors") && err.contains("--hidden"),
        "{err}"
    );
}

/// Layers so wide that their weights (10^16 of them) exceed any machine's address space:
/// the run ends with a usage error (exit 2) naming the parameters and the flags that size
/// them, never an allocator abort, and leaves no output directory.
#[test]
fn a_model_too_large_for_memory_is_refused_cleanly() {
    let dir = temp_dir("too-large");
    let data = fixture("credit_mixed.csv");
    let err = train_refused_for_size(&dir, "cpu", &data, "100000000,100000000", &[]);
    assert!(
        err.contains("the parameters") && err.contains("GB of memory") && err.contains("--hidden"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("memory allocation of"),
        "{err}"
    );
}

/// With no training flags, a small table gets enough optimizer steps to learn: on 1,500
/// rows whose default odds follow a known logistic rule, the default MLP's validation AUC
/// is within 0.02 of the logistic-regression challenger fitted on the same split (before
/// data-aware epochs, 5 epochs of 4 steps left it 0.1 short on such tables).
#[test]
fn defaults_on_a_small_table_reach_the_logistic_baseline() {
    let dir = temp_dir("defaults");
    let mut rng = riskgrad::rng::Rng::new(2024);
    let mut csv = String::from("income,debt,age,noise,default\n");
    for _ in 0..1500 {
        let (income, debt, age, noise) = (rng.normal(), rng.normal(), rng.normal(), rng.normal());
        let logit = -1.2 - 0.9 * income + 1.1 * debt - 0.4 * age;
        let y = rng.uniform() < 1.0 / (1.0 + (-logit).exp());
        csv.push_str(&format!(
            "{:.0},{:.0},{:.0},{noise:.3},{}\n",
            50_000.0 + 15_000.0 * income,
            8_000.0 + 3_000.0 * debt,
            40.0 + 10.0 * age,
            y as u8
        ));
    }
    let data = dir.join("loans.csv");
    std::fs::write(&data, csv).unwrap();
    let out = riskgrad(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--target",
        "default",
        "--device",
        "cpu",
        "--out",
        dir.join("model").to_str().unwrap(),
    ]);
    let text = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "{text}");
    // The defaults chosen are said up front: more epochs than a large table gets, and
    // early stopping on rows carved from the training split.
    assert!(
        text.contains("batch 60; at most 63 epochs")
            && text.contains("early stopping after 5 epochs")
            && text.contains("3 member networks averaged"),
        "the defaults chosen: {text}"
    );
    let side = text
        .lines()
        .find(|l| l.contains("side by side"))
        .expect(&text);
    let aucs: Vec<f64> = side
        .split(['|', ' '])
        .filter_map(|w| w.parse::<f64>().ok())
        .filter(|v| (0.0..=1.0).contains(v))
        .collect();
    let (mlp, logistic) = (aucs[0], *aucs.last().unwrap());
    assert!(
        mlp >= logistic - 0.02,
        "mlp {mlp} vs logistic {logistic}: {side}"
    );
}

/// Default early stopping gives way, with a note, when the stopping rows carved from a
/// tiny training split cannot rank a model (here they hold no default); asked for, it
/// is refused with the reason.
#[test]
fn default_early_stopping_gives_way_on_a_table_too_small_for_it() {
    let dir = temp_dir("tiny-stop");
    let mut csv = String::from("a,b,default\n");
    for i in 0..30 {
        let y = u8::from(i % 15 == 7);
        csv.push_str(&format!("{},{},{y}\n", i * 7 % 11, i % 4));
    }
    let data = dir.join("tiny.csv");
    std::fs::write(&data, csv).unwrap();
    let run = |extra: &[&str], name: &str| {
        let out_dir = dir.join(name);
        (train_small(&data, &out_dir, extra), out_dir)
    };
    let (out, model) = run(&[], "default");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("note: no early stopping"),
        "{}",
        stderr(&out)
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("config.json")).unwrap()).unwrap();
    assert!(config["training"]["early_stop"].is_null(), "{config}");
    let (out, _) = run(&["--early-stop", "3"], "asked");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--early-stop"), "{}", stderr(&out));
}
