//! Whether a checkpoint can be resumed by this run: it must train the same model on the
//! same data the same way; only the learning rate, the epochs, early stopping's patience
//! and the device may change. A difference is refused naming the setting, its value in
//! the checkpoint and here.

use crate::checkpoint::Checkpoint;
use crate::data::Preprocessor;
use crate::engine::graph::{Act, Optimizer};
use crate::error::{Error, Result, Setting};
use crate::model_io::TrainSettings;
use crate::nn::ModelSpec;

/// Refuses to resume `ck` with this run's settings `now`, `model` and fitted
/// preprocessing `pre` when they differ from the checkpoint's (see the module docs).
///
/// Errors: `Error::Invalid` naming the first setting that differs; the data (another
/// file, other data settings) as `Setting::Resume`.
pub fn check_resumable(
    ck: &Checkpoint,
    now: &TrainSettings,
    model: &ModelSpec,
    pre: &Preprocessor,
) -> Result<()> {
    let was = &ck.settings;
    let differ = |setting: Setting, a: String, b: String| {
        Err(Error::invalid(
            setting,
            format!("is {b} here but {a} in the checkpoint; resume with the first run's settings"),
        ))
    };
    // The seed and the split decide which rows train, and so the fitted preprocessing:
    // named first, before the preprocessing is blamed on the data.
    if was.seed != now.seed {
        return differ(Setting::Seed, was.seed.to_string(), now.seed.to_string());
    }
    if was.val_split != now.val_split {
        return differ(
            Setting::ValidationSplit,
            was.val_split.to_string(),
            now.val_split.to_string(),
        );
    }
    if was.stop_split != now.stop_split {
        let split = |s: Option<f64>| match s {
            Some(f) => format!("{f} (with early stopping)"),
            None => "unused (no early stopping)".into(),
        };
        return differ(
            Setting::StopSplit,
            split(was.stop_split),
            split(now.stop_split),
        );
    }
    if was.members != now.members {
        return differ(
            Setting::Members,
            was.members.to_string(),
            now.members.to_string(),
        );
    }
    match model_difference(&ck.model, model) {
        Some((Difference::Data, was, now)) => {
            return Err(Error::invalid(
                Setting::Resume,
                format!("the data gives {now} here but {was} in the checkpoint (another file, or other data settings); resume with the same data and data settings"),
            ));
        }
        Some((Difference::Setting(setting), was, now)) => return differ(setting, was, now),
        None => {}
    }
    // The fitted preprocessing (columns, categories, means and stds of the training
    // split) stands for the data: a moved file with the same contents resumes.
    if ck.preprocessing != *pre {
        return Err(Error::invalid(Setting::Resume, "the data or its preprocessing settings differ from the checkpoint's; resume with the same data and data settings"));
    }
    if was.batch != now.batch {
        return differ(
            Setting::BatchSize,
            was.batch.to_string(),
            now.batch.to_string(),
        );
    }
    if was.pos_weight != now.pos_weight {
        return differ(
            Setting::PosWeight,
            was.pos_weight.to_string(),
            now.pos_weight.to_string(),
        );
    }
    if without_lr(was.optimizer) != without_lr(now.optimizer) {
        let (a, b) = (
            optimizer_words(was.optimizer),
            optimizer_words(now.optimizer),
        );
        let setting = match (was.optimizer, now.optimizer) {
            (Optimizer::Sgd { .. }, Optimizer::Sgd { .. }) => Setting::Momentum,
            (Optimizer::AdamW { .. }, Optimizer::AdamW { .. }) => Setting::WeightDecay,
            _ => Setting::Optimizer,
        };
        return differ(setting, a, b);
    }
    // The members that finished trained to the checkpoint's epochs and patience: later
    // members trained to others would make another ensemble than either run's.
    let finished = ck.finished_members.len();
    let members_say = |setting: Setting, a: String, b: String| {
        Err(Error::invalid(
            setting,
            format!(
                "is {b} here but {a} in the checkpoint, whose first {finished} of {} members finished with {a}: resume a run of members with the settings it began with, or start a new run",
                was.members
            ),
        ))
    };
    if finished > 0 && was.epochs != now.epochs {
        return members_say(
            Setting::Epochs,
            was.epochs.to_string(),
            now.epochs.to_string(),
        );
    }
    if finished > 0 && was.early_stop != now.early_stop {
        let patience = |p: Option<usize>| p.map_or("off".into(), |p| format!("{p} epochs"));
        return members_say(
            Setting::EarlyStop,
            patience(was.early_stop),
            patience(now.early_stop),
        );
    }
    Ok(())
}

/// An optimizer as its settings say it, without the learning rate (which `--resume` may
/// change): `sgd, momentum 0.9`, `adamw, weight decay 0.01`.
fn optimizer_words(o: Optimizer) -> String {
    match o {
        Optimizer::Sgd { momentum, .. } => format!("sgd, momentum {momentum}"),
        Optimizer::Adam { beta1, beta2, .. } => format!("adam (betas {beta1}, {beta2})"),
        Optimizer::AdamW {
            beta1,
            beta2,
            weight_decay,
            ..
        } => format!("adamw (betas {beta1}, {beta2}), weight decay {weight_decay}"),
    }
}

/// What differs between two models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Difference {
    /// The input features the data gives (their count, and for the sequence models
    /// their layout).
    Data,
    /// An architecture setting.
    Setting(Setting),
}

/// The first thing that differs between the checkpoint's model `was` and this run's
/// `now`, in words: what sets it, its value in the checkpoint and here. `None` when the
/// models are the same.
fn model_difference(was: &ModelSpec, now: &ModelSpec) -> Option<(Difference, String, String)> {
    fn sizes(v: &[usize]) -> String {
        if v.is_empty() {
            "none".into()
        } else {
            v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
        }
    }
    fn kind(m: &ModelSpec) -> &'static str {
        match m {
            ModelSpec::Mlp { .. } => "mlp",
            ModelSpec::Lstm(_) => "lstm",
            ModelSpec::Gru(_) => "gru",
            ModelSpec::Cnn { .. } => "cnn",
            ModelSpec::Ensemble { .. } => "a cross-validation ensemble",
        }
    }
    fn sequence(statics: usize, channels: usize, steps: usize) -> String {
        format!(
            "{} input features ({statics} static, a history of {steps} steps of {channels} channels)",
            statics + channels * steps
        )
    }
    fn signs(monotone: &[i8]) -> String {
        let count = |s: i8| monotone.iter().filter(|&&m| m == s).count();
        match (count(1), count(-1)) {
            (0, 0) => "no constraint".into(),
            (up, down) => format!("{up} features increasing, {down} decreasing"),
        }
    }
    type Field = (Difference, String, String);
    use Difference::{Data, Setting as S};
    let first = |fields: Vec<Field>| fields.into_iter().find(|(_, a, b)| a != b);
    let common = |act: (Act, Act), dropout: (f32, f32)| -> Vec<Field> {
        vec![
            (
                S(Setting::Activation),
                act.0.name().into(),
                act.1.name().into(),
            ),
            (
                S(Setting::Dropout),
                dropout.0.to_string(),
                dropout.1.to_string(),
            ),
            (
                S(Setting::Monotone),
                signs(&was.monotone()),
                signs(&now.monotone()),
            ),
        ]
    };
    use ModelSpec::*;
    match (was, now) {
        _ if was == now => None,
        (
            Mlp {
                inputs: i0,
                hidden: h0,
                activation: a0,
                dropout: d0,
                ..
            },
            Mlp {
                inputs: i1,
                hidden: h1,
                activation: a1,
                dropout: d1,
                ..
            },
        ) => first(
            [
                vec![
                    (
                        Data,
                        format!("{i0} input features"),
                        format!("{i1} input features"),
                    ),
                    (S(Setting::HiddenSizes), sizes(h0), sizes(h1)),
                ],
                common((*a0, *a1), (*d0, *d1)),
            ]
            .concat(),
        ),
        (Lstm(r0), Lstm(r1)) | (Gru(r0), Gru(r1)) => {
            let on = |b: bool| if b { "on" } else { "off" }.to_string();
            first(
                [
                    vec![
                        (
                            Data,
                            sequence(r0.statics, r0.channels, r0.steps),
                            sequence(r1.statics, r1.channels, r1.steps),
                        ),
                        (
                            S(Setting::HiddenSizes),
                            sizes(&r0.hidden),
                            sizes(&r1.hidden),
                        ),
                        (
                            S(Setting::Bidirectional),
                            on(r0.bidirectional),
                            on(r1.bidirectional),
                        ),
                        (S(Setting::DenseSizes), sizes(&r0.head), sizes(&r1.head)),
                    ],
                    common((r0.activation, r1.activation), (r0.dropout, r1.dropout)),
                ]
                .concat(),
            )
        }
        (
            Cnn {
                statics: s0,
                channels: c0,
                steps: t0,
                layers: l0,
                activation: a0,
                dropout: d0,
                ..
            },
            Cnn {
                statics: s1,
                channels: c1,
                steps: t1,
                layers: l1,
                activation: a1,
                dropout: d1,
                ..
            },
        ) => first(
            [
                vec![
                    (Data, sequence(*s0, *c0, *t0), sequence(*s1, *c1, *t1)),
                    (S(Setting::ConvChannels), sizes(&l0.conv), sizes(&l1.conv)),
                    (
                        S(Setting::ConvKernel),
                        l0.kernel.to_string(),
                        l1.kernel.to_string(),
                    ),
                    (S(Setting::Pool), l0.pool.to_string(), l1.pool.to_string()),
                    (S(Setting::DenseSizes), sizes(&l0.dense), sizes(&l1.dense)),
                ],
                common((*a0, *a1), (*d0, *d1)),
            ]
            .concat(),
        ),
        (
            Ensemble {
                members: k0,
                model: m0,
            },
            Ensemble {
                members: k1,
                model: m1,
            },
        ) if k0 == k1 => model_difference(m0, m1),
        (Ensemble { members: k0, .. }, Ensemble { members: k1, .. }) => {
            Some((S(Setting::Folds), k0.to_string(), k1.to_string()))
        }
        _ => Some((S(Setting::Model), kind(was).into(), kind(now).into())),
    }
    // Equal fields but unequal models cannot happen; say so in words all the same.
    .or_else(|| {
        (was != now).then(|| (S(Setting::Model), "another model".into(), "this one".into()))
    })
}

fn without_lr(o: Optimizer) -> Optimizer {
    match o {
        Optimizer::Sgd { momentum, .. } => Optimizer::Sgd { lr: 0.0, momentum },
        Optimizer::Adam {
            beta1, beta2, eps, ..
        } => Optimizer::Adam {
            lr: 0.0,
            beta1,
            beta2,
            eps,
        },
        Optimizer::AdamW {
            beta1,
            beta2,
            eps,
            weight_decay,
            ..
        } => Optimizer::AdamW {
            lr: 0.0,
            beta1,
            beta2,
            eps,
            weight_decay,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_difference_names_its_setting_or_the_data() {
        let mlp = |inputs, hidden: &[usize]| ModelSpec::mlp(inputs, hidden).unwrap();
        let base = mlp(10, &[8, 4]);
        assert_eq!(model_difference(&base, &base), None);
        let first = |now: &ModelSpec| model_difference(&base, now).map(|d| d.0);
        assert_eq!(
            first(&mlp(10, &[8, 2])),
            Some(Difference::Setting(Setting::HiddenSizes))
        );
        // The data comes first: other inputs and other layers is the data's doing.
        assert_eq!(first(&mlp(12, &[8, 2])), Some(Difference::Data));
        assert_eq!(
            first(&base.clone().with_activation(Act::Tanh)),
            Some(Difference::Setting(Setting::Activation))
        );
        let (was, now) = match model_difference(&base, &base.clone().with_dropout(0.25).unwrap()) {
            Some((Difference::Setting(Setting::Dropout), was, now)) => (was, now),
            other => panic!("{other:?}"),
        };
        assert_eq!((was.as_str(), now.as_str()), ("0", "0.25"));
    }
}
