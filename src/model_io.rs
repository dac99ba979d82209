//! A saved model: a directory with the weights in safetensors format (one tensor per
//! parameter, named and shaped as the model's graph declares them, so PyTorch and other
//! safetensors readers can open them) and `config.json` holding everything else: the
//! architecture, the fitted preprocessing, the training settings, the validation
//! metrics, the scoring baseline and the riskgrad version.
//!
//! Works for any [`ModelSpec`]: the parameter names and shapes come from the graph that
//! `ModelSpec::build` makes, never from a list kept here.
//!
//! Loading checks everything before a model is used: the format and its version, the
//! preprocessing, that every tensor is there with the right dtype and shape and nothing
//! else is, that the values are finite, and a checksum that catches a corrupted or
//! mismatched weights file. Each file is written to a temporary name and renamed, weights
//! first, so a crash leaves either the old model or the new one (a crash between the two
//! renames leaves a pair whose checksum disagrees, and loading says so).

use crate::data::{Preprocessor, RowFingerprints};
use crate::engine::graph::{Graph, Optimizer, ParamSpec};
use crate::engine::plan::ParamLayout;
use crate::error::{Error, Result};
use crate::files::FileSet;
use crate::metrics::Evaluation;
use crate::nn::monotone::{Direction, MonotoneConstraint};
use crate::nn::ModelSpec;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Version of the saved-model layout (config.json and the tensor naming). A reader
/// refuses any other, naming the riskgrad version that wrote it.
pub const FORMAT_VERSION: u32 = 1;
/// The `format` field of config.json, which tells a saved model from other JSON.
pub const FORMAT_NAME: &str = "riskgrad-model";
/// The weights' file name in a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The configuration's file name in a model directory.
pub const CONFIG_FILE: &str = "config.json";

/// How the model was trained (recorded for the user, and compared on `--resume`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// The data's name as the user gave it (a path, or the bundled file's name).
    pub data: String,
    /// The update rule and its hyperparameters.
    pub optimizer: Optimizer,
    /// Rows per training step.
    pub batch: usize,
    /// Epochs asked for.
    pub epochs: usize,
    /// Seed of the split, the initial weights and the shuffles.
    pub seed: u64,
    /// Weight of the positive class in the loss.
    pub pos_weight: f32,
    /// Fraction of the rows held out for validation.
    pub val_split: f64,
    /// `--early-stop N`: epochs without a better validation AUC before stopping.
    pub early_stop: Option<usize>,
    /// Fraction of the training rows set aside to decide early stopping (then the
    /// validation rows are never seen before the final scoring); absent when early
    /// stopping watched the validation rows, as in models saved before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_split: Option<f64>,
    /// Networks trained and averaged, each stopping on its own carve of the training
    /// rows (1 in models saved before members existed). In a cross-validation ensemble,
    /// per fold.
    #[serde(default = "one_member")]
    pub members: usize,
    /// Set for a cross-validation ensemble (`--cv K --ensemble`): the folds, each a
    /// member trained on the other folds' rows. Then no row of the data was held out
    /// from all the members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv_folds: Option<usize>,
    /// The device it trained on, by name.
    pub device: String,
    /// Why `--device auto` took that device, when it timed the candidates: e.g. "the
    /// CPU backend, 0.420 ms a step against 1.900 ms on llvmpipe (...)". Absent for a
    /// named device, and in models saved before `auto` raced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_choice: Option<String>,
    /// Set when the weights were solved for rather than trained by `optimizer` (then
    /// `optimizer`, `batch` and `epochs` say nothing): e.g. `--model logistic`'s
    /// "newton (irls), l2 1, 7 steps". Absent in models saved before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver: Option<String>,
    /// Fingerprints of the validation rows' raw cells, by which `eval` finds them in a
    /// file by content (whatever their order, and among rows added since). Absent in
    /// models saved before it existed, and in a cross-validation ensemble.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_rows: Option<RowFingerprints>,
}

/// `members` of settings saved before members existed: one network.
fn one_member() -> usize {
    1
}

/// A trained model with everything needed to score a raw CSV row.
#[derive(Clone, Debug)]
pub struct SavedModel {
    /// The architecture.
    pub model: ModelSpec,
    /// How a raw row becomes the model's features (fitted on the training rows).
    pub preprocessing: Preprocessor,
    /// Model input column `j` is preprocessed feature `feature_order[j]`; `None` when the
    /// model reads the preprocessed features as they come. (Models that read a sequence
    /// block in another order than the preprocessing writes it record the order here.)
    pub feature_order: Option<Vec<usize>>,
    /// Mean of each model input column over the training rows: the "average applicant"
    /// that explanations start from.
    pub baseline: Vec<f32>,
    /// How it was trained.
    pub training: TrainSettings,
    /// The epoch whose weights these are.
    pub epoch: usize,
    /// Validation metrics of these weights.
    pub validation: Option<Evaluation>,
    /// Packed as the executors hold them ([`param_layout`]).
    pub params: Vec<f32>,
}

/// The parameters of `model` (names and shapes, in packing order) and their packing, from
/// the graph the model builds.
pub fn param_layout(model: &ModelSpec) -> Result<(Vec<ParamSpec>, ParamLayout)> {
    let mut g = Graph::new();
    let x = g.input("x", &[1, model.inputs()])?;
    model.build_probability(&mut g, x)?;
    let layout = ParamLayout::new(&g);
    Ok((g.params, layout))
}

#[derive(Serialize, Deserialize)]
struct WeightsInfo {
    file: String,
    bytes: u64,
    /// FNV-1a (64-bit) of the whole weights file, in hex.
    fnv1a64: String,
}

#[derive(Serialize, Deserialize)]
struct ParamInfo {
    name: String,
    shape: Vec<usize>,
}

/// config.json as written. The preprocessing is read as plain JSON first and then through
/// `Preprocessor::from_json`, which runs its own checks.
#[derive(Serialize, Deserialize)]
struct Config {
    format: String,
    format_version: u32,
    riskgrad_version: String,
    model: serde_json::Value,
    preprocessing: serde_json::Value,
    #[serde(default)]
    feature_order: Option<Vec<usize>>,
    baseline: Vec<f32>,
    training: TrainSettings,
    epoch: usize,
    validation: Option<Evaluation>,
    /// For the reader's information: each tensor in the weights file. Dense weights are
    /// stored `[inputs, outputs]` (PyTorch's `nn.Linear` keeps the transpose).
    parameters: Vec<ParamInfo>,
    weights: WeightsInfo,
}

impl SavedModel {
    /// Number of model input columns.
    pub fn n_inputs(&self) -> usize {
        self.model.inputs()
    }

    /// Reorders preprocessed rows (`rows × preprocessing.n_features()`) into the model's
    /// input columns.
    pub fn arrange(&self, x: Vec<f32>) -> Vec<f32> {
        let Some(order) = &self.feature_order else {
            return x;
        };
        let width = self.preprocessing.n_features().max(1);
        x.chunks_exact(width)
            .flat_map(|row| order.iter().map(move |&j| row[j]))
            .collect()
    }

    /// For each model input column, the index (in `preprocessing.inputs`) of the raw CSV
    /// column it comes from: one-hot and missing-indicator features map to their column.
    pub fn feature_sources(&self) -> Vec<usize> {
        let mut source = Vec::with_capacity(self.preprocessing.n_features());
        for (i, input) in self.preprocessing.inputs.iter().enumerate() {
            source.extend(std::iter::repeat_n(i, input.width()));
        }
        match &self.feature_order {
            Some(order) => order.iter().map(|&j| source[j]).collect(),
            None => source,
        }
    }

    /// The raw columns the model is held monotone in (see `nn::monotone`), read back
    /// from the signs of their value features, in column order.
    pub fn monotone_constraints(&self) -> Vec<MonotoneConstraint> {
        let signs = self.model.monotone();
        let names = self.source_names();
        let mut out: Vec<MonotoneConstraint> = Vec::new();
        for (&source, &sign) in self.feature_sources().iter().zip(&signs) {
            let direction = match sign {
                1 => Direction::Increasing,
                -1 => Direction::Decreasing,
                _ => continue,
            };
            if out.last().is_none_or(|c| c.column != names[source]) {
                out.push(MonotoneConstraint {
                    column: names[source].clone(),
                    direction,
                });
            }
        }
        out
    }

    /// The raw column names, indexed as [`feature_sources`](Self::feature_sources) values.
    pub fn source_names(&self) -> Vec<String> {
        self.preprocessing
            .inputs
            .iter()
            .map(|i| i.name().to_string())
            .collect()
    }

    /// The model input columns' names.
    pub fn feature_names(&self) -> Vec<String> {
        let names = &self.preprocessing.feature_names;
        match &self.feature_order {
            Some(order) => order.iter().map(|&j| names[j].clone()).collect(),
            None => names.clone(),
        }
    }

    /// Checks that the parts agree with each other (sizes, order, finite numbers).
    pub fn validate(&self) -> Result<()> {
        let n_pre = self.preprocessing.n_features();
        let inputs = self.model.inputs();
        let bad = |m: String| Err(Error::Internal(m));
        match &self.feature_order {
            None if n_pre != inputs => {
                return bad(format!(
                    "the model reads {inputs} columns, the preprocessing writes {n_pre}"
                ))
            }
            Some(order) if order.len() != inputs => {
                return bad(format!(
                    "feature_order has {} entries, the model reads {inputs} columns",
                    order.len()
                ))
            }
            Some(order) if order.iter().any(|&j| j >= n_pre) => {
                return bad(format!(
                    "feature_order names a feature past the preprocessing's {n_pre}"
                ))
            }
            _ => {}
        }
        if self.baseline.len() != inputs || self.baseline.iter().any(|v| !v.is_finite()) {
            return bad(format!(
                "the baseline must be {inputs} finite numbers, got {}",
                self.baseline.len()
            ));
        }
        let signs = self.model.monotone();
        if !signs.is_empty()
            && (signs.len() != inputs || signs.iter().any(|s| !(-1..=1).contains(s)))
        {
            return bad(format!(
                "the monotone signs must be {inputs} of -1, 0 and 1, got {signs:?}"
            ));
        }
        let (_, layout) = param_layout(&self.model)?;
        if self.params.len() != layout.total {
            return bad(format!(
                "{} parameter words, the model packs {}",
                self.params.len(),
                layout.total
            ));
        }
        Ok(())
    }

    /// Writes `dir/model.safetensors` and `dir/config.json` (creating `dir`): the
    /// directory is replaced in one step, its other files carried over
    /// ([`FileSet::replacing`]).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let mut files = FileSet::replacing(dir)?;
        self.stage(dir, &mut files)?;
        files.commit()
    }

    /// Writes the weights and config.json into `files` (config.json last), for a caller
    /// that commits them with the rest of a run's files: nothing replaces the model in
    /// `dir` until [`FileSet::commit`].
    pub fn stage(&self, dir: &Path, files: &mut FileSet) -> Result<()> {
        self.validate()?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let (specs, layout) = param_layout(&self.model)?;
        let tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = specs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let values = &self.params[layout.offsets[i]..layout.offsets[i] + layout.lens[i]];
                (
                    p.name.clone(),
                    Dtype::F32,
                    p.shape.clone(),
                    f32_bytes(values),
                )
            })
            .collect();
        // "pt" lets PyTorch-side loaders (transformers, safetensors.torch) take the file.
        // One key only: safetensors writes the metadata map in hash order, and a second
        // key would make two saves of the same weights differ byte for byte.
        let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        let weights = serialize_tensors(&tensors, meta)?;

        let config = Config {
            format: FORMAT_NAME.to_string(),
            format_version: FORMAT_VERSION,
            riskgrad_version: env!("CARGO_PKG_VERSION").to_string(),
            model: to_value(&self.model)?,
            preprocessing: to_value(&self.preprocessing)?,
            feature_order: self.feature_order.clone(),
            baseline: self.baseline.clone(),
            training: self.training.clone(),
            epoch: self.epoch,
            validation: self.validation.clone(),
            parameters: specs
                .iter()
                .map(|p| ParamInfo {
                    name: p.name.clone(),
                    shape: p.shape.clone(),
                })
                .collect(),
            weights: WeightsInfo {
                file: WEIGHTS_FILE.to_string(),
                bytes: weights.len() as u64,
                fnv1a64: format!("{:016x}", fnv1a64(&weights)),
            },
        };
        let json = serde_json::to_vec_pretty(&config).map_err(Error::internal)?;
        let weights_path = dir.join(WEIGHTS_FILE);
        let config_path = dir.join(CONFIG_FILE);
        // Both files are written in full before either is renamed into place; the config
        // holds the weights' checksum, so a crash between the renames is caught on load.
        files.add(&weights_path, &weights)?;
        files.add(&config_path, &json)
    }

    /// Reads and checks a model directory written by [`save`](Self::save); any failure
    /// is an [`Error::BadModel`].
    pub fn load(dir: &Path) -> Result<Self> {
        Self::read(dir).map_err(|e| match e {
            e @ Error::BadModel { .. } => e,
            e => Error::BadModel {
                dir: dir.to_path_buf(),
                source: Box::new(e),
            },
        })
    }

    fn read(dir: &Path) -> Result<Self> {
        let config_path = dir.join(CONFIG_FILE);
        let weights_path = dir.join(WEIGHTS_FILE);
        if !dir.is_dir() {
            return Err(Error::corrupt(dir, "no such model directory"));
        }
        let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
        let bad_config = |m: String| Error::corrupt(&config_path, m);
        // The format and version first, so a future layout is reported as such rather
        // than as whatever field it no longer has.
        let head: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad_config(format!("not JSON (line {}): {e}", e.line())))?;
        if head.get("format").and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
            return Err(bad_config(format!(
                "not a riskgrad model config (its \"format\" is not {FORMAT_NAME:?})"
            )));
        }
        let version = head.get("format_version").and_then(|v| v.as_u64());
        if version != Some(FORMAT_VERSION as u64) {
            let writer = head
                .get("riskgrad_version")
                .and_then(|v| v.as_str())
                .unwrap_or("an unknown version");
            let shown = version.map_or("missing".to_string(), |v| v.to_string());
            return Err(bad_config(format!(
                "model format version {shown} (written by riskgrad {writer}) is not {FORMAT_VERSION}, the one riskgrad {} reads",
                env!("CARGO_PKG_VERSION")
            )));
        }
        let config: Config =
            serde_json::from_value(head).map_err(|e| bad_config(format!("{e}")))?;
        let model: ModelSpec = serde_json::from_value(config.model)
            .map_err(|e| bad_config(format!("\"model\": {e}")))?;
        let preprocessing =
            Preprocessor::from_json(&config.preprocessing.to_string(), &config_path)?;

        let bytes = std::fs::read(&weights_path).map_err(|e| Error::io(&weights_path, e))?;
        let bad_weights = |m: String| Error::corrupt(&weights_path, m);
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| {
            bad_weights(format!(
                "not a complete safetensors file (truncated or corrupted?): {e}"
            ))
        })?;
        let (specs, layout) = param_layout(&model)?;
        let mut params = vec![0.0f32; layout.total];
        for (i, spec) in specs.iter().enumerate() {
            let t = tensors.tensor(&spec.name).map_err(|_| {
                bad_weights(format!(
                    "tensor {:?} of the {} model is missing (the file holds {:?})",
                    spec.name,
                    model_kind(&model),
                    sorted_names(&tensors)
                ))
            })?;
            if t.dtype() != Dtype::F32 {
                return Err(bad_weights(format!(
                    "tensor {:?} is {}, riskgrad stores F32",
                    spec.name,
                    t.dtype()
                )));
            }
            if t.shape() != spec.shape.as_slice() {
                return Err(bad_weights(format!(
                    "tensor {:?} has shape {:?}, the model needs {:?}",
                    spec.name,
                    t.shape(),
                    spec.shape
                )));
            }
            let dst = &mut params[layout.offsets[i]..layout.offsets[i] + layout.lens[i]];
            for (d, c) in dst.iter_mut().zip(t.data().chunks_exact(4)) {
                *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
            if let Some(v) = dst.iter().find(|v| !v.is_finite()) {
                return Err(bad_weights(format!("tensor {:?} holds {v}", spec.name)));
            }
        }
        let extra: Vec<&str> = sorted_names(&tensors)
            .into_iter()
            .filter(|n| !specs.iter().any(|s| s.name == *n))
            .collect();
        if !extra.is_empty() {
            return Err(bad_weights(format!(
                "tensors {extra:?} are not part of the {} model",
                model_kind(&model)
            )));
        }
        let sum = format!("{:016x}", fnv1a64(&bytes));
        if bytes.len() as u64 != config.weights.bytes || sum != config.weights.fnv1a64 {
            return Err(bad_weights(format!(
                "its checksum ({} bytes, {sum}) is not the one config.json records ({} bytes, {}): the file is corrupted or comes from another save",
                bytes.len(),
                config.weights.bytes,
                config.weights.fnv1a64
            )));
        }
        let saved = SavedModel {
            model,
            preprocessing,
            feature_order: config.feature_order,
            baseline: config.baseline,
            training: config.training,
            epoch: config.epoch,
            validation: config.validation,
            params,
        };
        saved.validate().map_err(|e| bad_config(e.to_string()))?;
        Ok(saved)
    }
}

fn model_kind(model: &ModelSpec) -> String {
    serde_json::to_value(model)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
        .unwrap_or_else(|| "saved".into())
}

fn sorted_names<'a>(t: &'a SafeTensors<'a>) -> Vec<&'a str> {
    let mut names = t.names();
    names.sort_unstable();
    names
}

fn to_value<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(Error::internal)
}

/// Little-endian bytes of f32 values (safetensors' byte order).
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A safetensors file's bytes from `(name, dtype, shape, little-endian data)`, with
/// string metadata.
pub fn serialize_tensors(
    tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), data)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Internal(format!("tensor {name:?}: {e}")))
        })
        .collect::<Result<BTreeMap<_, _>>>()?;
    safetensors::tensor::serialize(views, Some(metadata))
        .map_err(|e| Error::Internal(format!("safetensors: {e}")))
}

/// FNV-1a, 64-bit: a checksum to notice a damaged or swapped file (not a defence against
/// anyone who means harm).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_extend(FNV1A64_START, bytes)
}

/// The state [`fnv1a64`] starts from (its offset basis), for hashing in pieces with
/// [`fnv1a64_extend`].
pub const FNV1A64_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of `bytes` continued from `state`: `fnv1a64_extend(fnv1a64(a), b)` is
/// `fnv1a64(a ++ b)`.
pub fn fnv1a64_extend(state: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(state, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
        assert_eq!(fnv1a64_extend(fnv1a64(b"foo"), b"bar"), fnv1a64(b"foobar"));
    }
}
