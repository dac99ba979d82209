//! Saved models: a save/load round trip scores identically, the weights file is plain
//! safetensors with the graph's parameter names, and every kind of damage (truncation,
//! flipped bytes, missing or misshapen tensors, unknown versions) is a clear error that
//! names what is wrong.

use crate::lifecycle_common;

use lifecycle_common::{bundled, temp_dir, trained};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::model_io::{fnv1a64, param_layout, SavedModel, CONFIG_FILE, WEIGHTS_FILE};
use riskgrad::scoring::Scorer;
use safetensors::SafeTensors;
use std::path::Path;
use std::sync::OnceLock;

/// One trained model shared by the tests of this file, saved once.
fn model() -> &'static (SavedModel, Vec<f32>) {
    static M: OnceLock<(SavedModel, Vec<f32>)> = OnceLock::new();
    M.get_or_init(|| trained(&[16, 8], 1))
}

fn saved_copy(name: &str) -> crate::common::TempDir {
    let dir = temp_dir(name);
    model().0.save(&dir).unwrap();
    dir
}

fn score(m: &SavedModel, x: &[f32]) -> Vec<f32> {
    let mut exec = CpuExecutor::new();
    Scorer::new(&mut exec, m, 1000).unwrap().score(x).unwrap()
}

fn load_err(dir: &Path) -> String {
    match SavedModel::load(dir) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn round_trip_scores_identically() {
    let (m, trainer_probs) = model();
    let dir = saved_copy("roundtrip");
    let back = SavedModel::load(&dir).unwrap();
    assert_eq!(back.model, m.model);
    assert_eq!(back.preprocessing, m.preprocessing);
    assert_eq!(back.baseline, m.baseline);
    assert_eq!(back.training, m.training);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&back.params), bits(&m.params), "weights bit for bit");

    let val = &bundled().val;
    let before = score(m, &val.x);
    let after = score(&back, &val.x);
    assert_eq!(
        bits(&before),
        bits(&after),
        "the loaded model scores exactly as the saved one"
    );
    // The scorer (direct input, batches of 1000) against the trainer's validation plan
    // (gather, chunks of 2048): the same math on other batch shapes.
    for (i, (a, b)) in after.iter().zip(trainer_probs).enumerate() {
        assert!((a - b).abs() <= 1e-6, "row {i}: scorer {a} vs trainer {b}");
    }
    // Saving again writes the same bytes (nothing depends on time or hash order).
    let again = temp_dir("roundtrip-again");
    back.save(&again).unwrap();
    assert!(
        std::fs::read(dir.join(WEIGHTS_FILE)).unwrap()
            == std::fs::read(again.join(WEIGHTS_FILE)).unwrap(),
        "the same bytes"
    );
    assert!(crate::common::temporary_files(&dir).is_empty());
}

#[test]
fn weights_are_plain_safetensors_named_by_the_graph() {
    let (m, _) = model();
    let dir = saved_copy("names");
    let bytes = std::fs::read(dir.join(WEIGHTS_FILE)).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let (specs, layout) = param_layout(&m.model).unwrap();
    let mut names = st.names();
    names.sort();
    assert_eq!(
        names,
        [
            "dense0.bias",
            "dense0.weight",
            "dense1.bias",
            "dense1.weight",
            "dense2.bias",
            "dense2.weight"
        ]
    );
    let f = bundled().n_features();
    assert_eq!(st.tensor("dense0.weight").unwrap().shape(), [f, 16]);
    assert_eq!(st.tensor("dense2.weight").unwrap().shape(), [8, 1]);
    for (i, spec) in specs.iter().enumerate() {
        let t = st.tensor(&spec.name).unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::F32);
        let values: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(
            values,
            m.params[layout.offsets[i]..layout.offsets[i] + layout.lens[i]]
        );
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(CONFIG_FILE)).unwrap()).unwrap();
    assert_eq!(config["format_version"], 1);
    assert_eq!(config["riskgrad_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(config["model"]["kind"], "mlp");
    assert!(config["preprocessing"]["inputs"].as_array().unwrap().len() > 10);
}

#[test]
fn a_truncated_weights_file_is_a_clear_error() {
    let dir = saved_copy("truncated");
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 4, 8 + 10, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let e = load_err(&dir);
        assert!(
            e.contains("model.safetensors") && e.contains("truncated or corrupted"),
            "cut at {cut}: {e}"
        );
    }
}

#[test]
fn flipped_bytes_are_caught() {
    let dir = saved_copy("flipped");
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).unwrap();
    // A flip in the tensor data: still a valid safetensors file, caught by the checksum.
    let mut data_flip = bytes.clone();
    let last = data_flip.len() - 3;
    data_flip[last] ^= 0x10;
    std::fs::write(&path, &data_flip).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("checksum") && e.contains("corrupted"), "{e}");
    // A flip in the JSON header: not parseable.
    let mut header_flip = bytes.clone();
    header_flip[9] = b'#';
    std::fs::write(&path, &header_flip).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn missing_or_misshapen_tensors_are_named() {
    let (m, _) = model();
    let dir = saved_copy("shapes");
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let rebuild = |skip: &str, reshape: Option<(&str, Vec<usize>)>| {
        let tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .filter(|(n, _)| n != skip)
            .map(|(n, t)| {
                let shape = match &reshape {
                    Some((r, s)) if *r == n => s.clone(),
                    _ => t.shape().to_vec(),
                };
                (n, t.dtype(), shape, t.data().to_vec())
            })
            .collect();
        riskgrad::model_io::serialize_tensors(&tensors, Default::default()).unwrap()
    };
    std::fs::write(&path, rebuild("dense1.weight", None)).unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("\"dense1.weight\"") && e.contains("missing"),
        "{e}"
    );

    // [16, 8] stored as [8, 16]: same bytes, wrong shape.
    std::fs::write(&path, rebuild("", Some(("dense1.weight", vec![8, 16])))).unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("\"dense1.weight\"") && e.contains("[8, 16]") && e.contains("[16, 8]"),
        "{e}"
    );

    // Weights of another architecture beside this config.
    let other = temp_dir("shapes-other");
    let (small, _) = trained(&[4], 1);
    small.save(&other).unwrap();
    std::fs::copy(other.join(WEIGHTS_FILE), &path).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("dense0.weight") && e.contains("shape"), "{e}");
    let _ = m;
}

#[test]
fn config_problems_are_named() {
    let dir = saved_copy("config");
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).unwrap();

    let future = text.replace("\"format_version\": 1", "\"format_version\": 99");
    std::fs::write(&path, &future).unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("config.json") && e.contains("99") && e.contains("version"),
        "{e}"
    );

    let unknown_kind = text.replace("\"kind\": \"mlp\"", "\"kind\": \"transformer\"");
    std::fs::write(&path, &unknown_kind).unwrap();
    let e = load_err(&dir);
    assert!(
        e.contains("config.json") && e.contains("transformer"),
        "{e}"
    );

    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("config.json") && e.contains("not JSON"), "{e}");

    std::fs::remove_file(&path).unwrap();
    let e = load_err(&dir);
    assert!(e.contains("config.json"), "{e}");

    let e = load_err(Path::new("/nonexistent/model/dir"));
    assert!(e.contains("/nonexistent/model/dir"), "{e}");
}

#[test]
fn weights_from_another_save_of_the_same_model_are_caught() {
    let (m, _) = model();
    let a = saved_copy("swap-a");
    let mut other = m.clone();
    other.params[0] += 0.5;
    let b = temp_dir("swap-b");
    other.save(&b).unwrap();
    // Same names and shapes, different values: only the checksum can tell.
    std::fs::copy(b.join(WEIGHTS_FILE), a.join(WEIGHTS_FILE)).unwrap();
    let e = load_err(&a);
    assert!(e.contains("another save") || e.contains("corrupted"), "{e}");
    assert_ne!(fnv1a64(&std::fs::read(a.join(WEIGHTS_FILE)).unwrap()), 0);
}

/// config.json and metrics.json hold f64s (preprocessing statistics, metrics) that must
/// read back to the same bits. serde_json's default float parser can be one unit in the
/// last place off (it read this value as 0.4560499575065235); its `float_roundtrip`
/// feature parses exactly.
#[test]
fn json_floats_read_back_exactly() {
    for v in [
        0.45604995750652355f64,
        1e-300,
        0.1,
        2.0f64.sqrt(),
        123456.78901234567,
    ] {
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(
            serde_json::from_str::<f64>(&text).unwrap().to_bits(),
            v.to_bits(),
            "{text}"
        );
    }
}
