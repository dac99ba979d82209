//! `cli::output::copy_model_dir` (the Python package's `Model.save`): a copy over another
//! model replaces it whole, a locked destination is refused with the training's message,
//! and a model copied onto its own directory is left as it is.

use crate::common::{fixture, train_small, TempDir};
use riskgrad::cli::output::copy_model_dir;
use std::collections::BTreeMap;
use std::path::Path;

/// Each regular file of `dir` by name, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn train(data: &Path, out: &Path, seed: &str) {
    let run = train_small(data, out, &["--epochs", "1", "--seed", seed]);
    assert!(run.status.success(), "{}", crate::common::stderr(&run));
}

#[test]
fn a_copy_replaces_a_model_whole_under_its_lock() {
    let dir = TempDir::new("copy-whole");
    let data = fixture("credit_mixed.csv");
    let (a, b) = (dir.join("a"), dir.join("b"));
    train(&data, &a, "1");
    train(&data, &b, "2");
    let (of_a, of_b) = (files(&a), files(&b));
    assert_ne!(of_a, of_b);

    copy_model_dir(&a, &b).unwrap();
    let copied = files(&b);
    for (name, bytes) in &of_a {
        assert_eq!(copied.get(name), Some(bytes), "{name}");
    }
    riskgrad::model_io::SavedModel::load(&b).unwrap();
    // Beside the models: their locks; no staging directory left.
    let mut beside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, [".a.riskgrad.lock", ".b.riskgrad.lock", "a", "b"]);

    // While another process holds b's lock, the copy is refused as a training is, and b
    // stays as it was.
    let lock = riskgrad::files::DirLock::try_acquire(&b).unwrap().unwrap();
    let err = copy_model_dir(&a, &b).unwrap_err();
    let message = riskgrad::cli::message(&err);
    assert!(
        message.contains("is being written by another riskgrad run"),
        "{message}"
    );
    assert_eq!(riskgrad::cli::exit_code(&err), riskgrad::cli::exit::USAGE);
    assert_eq!(files(&b), copied);
    drop(lock);

    // Onto its own directory: nothing changes.
    let stamps = |d: &Path| -> Vec<_> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), e.metadata().unwrap().modified().unwrap())
            })
            .collect();
        v.sort();
        v
    };
    let before = stamps(&a);
    copy_model_dir(&a, &a).unwrap();
    assert_eq!(stamps(&a), before);
    assert_eq!(files(&a), of_a);

    // Not a model: refused before the destination is touched.
    let err = copy_model_dir(&dir.join("missing"), &b).unwrap_err();
    assert_eq!(riskgrad::cli::exit_code(&err), riskgrad::cli::exit::MODEL);
    assert_eq!(files(&b), copied);
}
