//! A training checkpoint: one safetensors file holding the trainer's numeric state
//! (parameters, optimizer state, step counters, and the best epoch's parameters for early
//! stopping) with the rest (epoch, generator state, history, settings, preprocessing) as
//! JSON in the file's metadata. A run of several member networks trains them one after
//! another; its checkpoint is the current member's, with the kept weights and epochs of
//! the members before it. One file, written to a temporary name and renamed, so a
//! checkpoint is always whole.

use crate::data::Preprocessor;
use crate::error::{Error, Result};
use crate::files::write_atomically;
use crate::model_io::{f32_bytes, fnv1a64_extend, serialize_tensors, TrainSettings, FNV1A64_START};
use crate::nn::ModelSpec;
use crate::train::{EpochReport, MidEpoch, TrainerState};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The checkpoint's file name in the output directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The checkpoint of a run training into a directory that already holds a saved model:
/// beside that model's own checkpoint until the run's model replaces it (then renamed
/// to [`CHECKPOINT_FILE`]), so a run killed before then leaves the earlier model's
/// directory as it was. `--resume` takes it first: it is the interrupted run's.
pub const NEXT_CHECKPOINT_FILE: &str = "checkpoint.next.safetensors";
/// Version of the checkpoint layout; a reader refuses any other.
pub const CHECKPOINT_VERSION: u32 = 1;
const META_KEY: &str = "riskgrad_checkpoint";

/// The best epoch so far by validation AUC, with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct BestEpoch {
    /// Its number, from 1.
    pub epoch: usize,
    /// Its validation AUC.
    pub auc: f64,
    /// Its parameters, packed.
    pub params: Vec<f32>,
}

/// A member network that finished before the checkpoint's own (a run of several trains
/// them one after another): its kept weights and its epochs.
#[derive(Clone, Debug)]
pub struct FinishedMember {
    /// The weights it keeps, packed.
    pub params: Vec<f32>,
    /// A report per epoch it trained.
    pub history: Vec<EpochReport>,
    /// The epoch whose weights it keeps.
    pub kept_epoch: usize,
}

/// Everything a stopped training run needs to go on as if it had not stopped.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The trainer's numeric state at the end of the last epoch.
    pub state: TrainerState,
    /// A report per epoch so far.
    pub history: Vec<EpochReport>,
    /// The best epoch so far, for early stopping and the saved model.
    pub best: Option<BestEpoch>,
    /// The run's settings, compared with the resuming command's.
    pub settings: TrainSettings,
    /// The model being trained.
    pub model: ModelSpec,
    /// The preprocessing fitted when training started: a resumed run must fit the same one
    /// (same data, same flags), which is how resuming checks it has the same data.
    pub preprocessing: Preprocessor,
    /// Model input column means of the training rows (the saved model's baseline).
    pub baseline: Vec<f32>,
    /// The members finished before this one, in order (empty for a run of one network,
    /// or while training the first). The checkpoint's state is member
    /// `finished_members.len()`'s.
    pub finished_members: Vec<FinishedMember>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    format_version: u32,
    riskgrad_version: String,
    epoch: usize,
    /// As a string: JSON numbers above 2^53 lose digits in many readers.
    rng: String,
    history: Vec<EpochReport>,
    best_epoch: Option<usize>,
    #[serde(default, deserialize_with = "crate::metrics::f64_or_nan")]
    best_auc: f64,
    settings: TrainSettings,
    model: ModelSpec,
    preprocessing: Preprocessor,
    baseline: Vec<f32>,
    /// Set when the run stopped inside an epoch (absent in checkpoints taken at an
    /// epoch's end, as all were before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    within_epoch: Option<MidEpochMeta>,
    /// [`FinishedMember`]s, their weights as the tensors `member<i>_params` (absent in
    /// a run of one network, as in every checkpoint before members existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    finished_members: Vec<FinishedMemberMeta>,
    /// [`tensors_checksum`] of the tensors, so that a checkpoint whose bytes changed on
    /// disk is refused rather than resumed (absent in checkpoints before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tensors_fnv1a64: Option<String>,
}

/// FNV-1a over every tensor's name and bytes, in name order (independent of where the
/// file lays them out).
fn tensors_checksum<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut named: Vec<_> = tensors.into_iter().collect();
    named.sort_by_key(|&(name, _)| name);
    let sum = named.iter().fold(FNV1A64_START, |h, (name, data)| {
        let h = fnv1a64_extend(h, name.as_bytes());
        fnv1a64_extend(h, data)
    });
    format!("{sum:016x}")
}

#[derive(Serialize, Deserialize)]
struct FinishedMemberMeta {
    history: Vec<EpochReport>,
    kept_epoch: usize,
}

/// The tensor holding finished member `i`'s weights.
fn member_tensor(i: usize) -> String {
    format!("member{i}_params")
}

/// [`MidEpoch`] in the metadata: the generator state as a string (as `rng`) and the
/// loss sum as its f32 bits, so both come back exactly.
#[derive(Serialize, Deserialize)]
struct MidEpochMeta {
    steps_done: usize,
    rng_before_shuffle: String,
    loss_sum_bits: u32,
}

impl Checkpoint {
    /// Writes the checkpoint to `path` (atomically: a crash leaves the old one).
    pub fn save(&self, path: &Path) -> Result<()> {
        let meta = Meta {
            format_version: CHECKPOINT_VERSION,
            riskgrad_version: env!("CARGO_PKG_VERSION").to_string(),
            epoch: self.state.epoch,
            rng: self.state.rng.to_string(),
            history: self.history.clone(),
            best_epoch: self.best.as_ref().map(|b| b.epoch),
            best_auc: self.best.as_ref().map_or(f64::NAN, |b| b.auc),
            settings: self.settings.clone(),
            model: self.model.clone(),
            preprocessing: self.preprocessing.clone(),
            baseline: self.baseline.clone(),
            within_epoch: self.state.within_epoch.map(|m| MidEpochMeta {
                steps_done: m.steps_done,
                rng_before_shuffle: m.rng_before_shuffle.to_string(),
                loss_sum_bits: m.loss_sum.to_bits(),
            }),
            finished_members: self
                .finished_members
                .iter()
                .map(|m| FinishedMemberMeta {
                    history: m.history.clone(),
                    kept_epoch: m.kept_epoch,
                })
                .collect(),
            tensors_fnv1a64: None,
        };
        let mut tensors = vec![
            (
                "params".to_string(),
                Dtype::F32,
                vec![self.state.params.len()],
                f32_bytes(&self.state.params),
            ),
            (
                "opt_state".to_string(),
                Dtype::F32,
                vec![self.state.opt_state.len()],
                f32_bytes(&self.state.opt_state),
            ),
            (
                "step".to_string(),
                Dtype::U32,
                vec![2],
                self.state
                    .step
                    .iter()
                    .flat_map(|s| s.to_le_bytes())
                    .collect(),
            ),
        ];
        if let Some(best) = &self.best {
            tensors.push((
                "best_params".to_string(),
                Dtype::F32,
                vec![best.params.len()],
                f32_bytes(&best.params),
            ));
        }
        for (i, member) in self.finished_members.iter().enumerate() {
            tensors.push((
                member_tensor(i),
                Dtype::F32,
                vec![member.params.len()],
                f32_bytes(&member.params),
            ));
        }
        let meta = Meta {
            tensors_fnv1a64: Some(tensors_checksum(
                tensors
                    .iter()
                    .map(|(name, _, _, data)| (name.as_str(), data.as_slice())),
            )),
            ..meta
        };
        let json = serde_json::to_string(&meta).map_err(Error::internal)?;
        let bytes = serialize_tensors(&tensors, HashMap::from([(META_KEY.to_string(), json)]))?;
        write_atomically(path, &bytes)
    }

    /// Reads a checkpoint `save` wrote; another layout version is an error naming it.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad = |m: String| Error::corrupt(path, m);
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| {
            bad(format!(
                "not a riskgrad checkpoint (truncated or corrupted?): {e}"
            ))
        })?;
        let tensors = SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a complete safetensors file: {e}")))?;
        let json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(META_KEY))
            .ok_or_else(|| bad("no riskgrad checkpoint metadata".into()))?;
        let head: serde_json::Value =
            serde_json::from_str(json).map_err(|e| bad(format!("checkpoint metadata: {e}")))?;
        let version = head.get("format_version").and_then(|v| v.as_u64());
        if version != Some(CHECKPOINT_VERSION as u64) {
            return Err(bad(format!("checkpoint format {version:?} is not {CHECKPOINT_VERSION}, the one this riskgrad reads")));
        }
        let meta: Meta =
            serde_json::from_value(head).map_err(|e| bad(format!("checkpoint metadata: {e}")))?;
        if let Some(want) = &meta.tensors_fnv1a64 {
            let stored = tensors.tensors();
            let got = tensors_checksum(stored.iter().map(|(name, t)| (name.as_str(), t.data())));
            if got != *want {
                return Err(bad(format!(
                    "its tensors' checksum is {got}, not the {want} it was saved with: the file changed on disk"
                )));
            }
        }
        let preprocessing = Preprocessor::from_json(
            &serde_json::to_string(&meta.preprocessing).unwrap_or_default(),
            path,
        )?;
        let floats = |name: &str| -> Result<Option<Vec<f32>>> {
            let Ok(t) = tensors.tensor(name) else {
                return Ok(None);
            };
            if t.dtype() != Dtype::F32 || t.shape().len() != 1 {
                return Err(bad(format!("tensor {name:?} is not a 1-D F32 tensor")));
            }
            Ok(Some(
                t.data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ))
        };
        let need =
            |name: &str| floats(name)?.ok_or_else(|| bad(format!("tensor {name:?} is missing")));
        let step = tensors
            .tensor("step")
            .map_err(|_| bad("tensor \"step\" is missing".into()))?;
        if step.dtype() != Dtype::U32 || step.shape() != [2] {
            return Err(bad("tensor \"step\" is not 2 U32 values".into()));
        }
        let w: Vec<u32> = step
            .data()
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let rng = meta
            .rng
            .parse::<u64>()
            .map_err(|_| bad(format!("generator state {:?} is not a number", meta.rng)))?;
        let best = match (meta.best_epoch, floats("best_params")?) {
            (Some(epoch), Some(params)) => Some(BestEpoch {
                epoch,
                auc: meta.best_auc,
                params,
            }),
            (None, None) => None,
            _ => {
                return Err(bad(
                    "the best epoch and its parameters must come together".into()
                ))
            }
        };
        let within_epoch = match &meta.within_epoch {
            Some(m) => Some(MidEpoch {
                steps_done: m.steps_done,
                rng_before_shuffle: m
                    .rng_before_shuffle
                    .parse()
                    .map_err(|_| bad("the mid-epoch generator state is not a number".into()))?,
                loss_sum: f32::from_bits(m.loss_sum_bits),
            }),
            None => None,
        };
        let finished_members = meta
            .finished_members
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                Ok(FinishedMember {
                    params: need(&member_tensor(i))?,
                    history: m.history,
                    kept_epoch: m.kept_epoch,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Checkpoint {
            state: TrainerState {
                epoch: meta.epoch,
                params: need("params")?,
                opt_state: need("opt_state")?,
                step: [w[0], w[1]],
                rng,
                within_epoch,
            },
            history: meta.history,
            best,
            settings: meta.settings,
            model: meta.model,
            preprocessing,
            baseline: meta.baseline,
            finished_members,
        })
    }
}
