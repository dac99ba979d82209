//! Model specs: how a model turns a batch of features into one logit per row, and how its
//! parameters start.

pub mod architecture;
mod describe;
pub mod monotone;
pub mod periodic;
pub mod rnn;

use crate::engine::graph::{Act, CellKind, Graph, NodeId};
use crate::engine::plan::ParamLayout;
use crate::error::{Error, Result, Setting};
use crate::rng::Rng;
use periodic::PeriodicEmbedding;
use serde::{Deserialize, Serialize};

mod cnn;
pub use cnn::CnnLayers;

/// The architectures the CLI offers. Each hidden layer applies the model's `activation`
/// (ReLU unless chosen otherwise with `with_activation`; a saved model from before the
/// choice existed has none recorded and loads as ReLU).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelSpec {
    /// Dense layers with the activation, then a dense layer to one logit.
    Mlp {
        /// Features per row.
        inputs: usize,
        /// Widths of the hidden layers, first to last.
        hidden: Vec<usize>,
        /// The hidden layers' activation (relu in models saved before it was a choice).
        #[serde(default = "relu")]
        activation: Act,
        /// Dropout probability after each hidden layer, in training only (0 in models
        /// saved before it was a choice; see [`ModelSpec::build_training`]).
        #[serde(default)]
        dropout: f32,
        /// Per input column, the sign its weights are held to (`+1`: the probability of
        /// default never falls as it rises, `-1`: never rises, `0`: free), built as
        /// `monotone` says; empty (as in models saved before constraints existed) when
        /// no column is constrained.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        monotone: Vec<i8>,
        /// A learned periodic embedding of the numeric features in front of the dense
        /// layers (`--numeric-encoding periodic`); none in models saved before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        periodic: Option<PeriodicEmbedding>,
    },
    /// Stacked LSTM layers over the payment-history block of the features; the last
    /// hidden state beside the static features, then dense ReLU layers (`head`, often
    /// none) and a dense layer to one logit.
    Lstm(RecurrentSpec),
    /// The same with GRU layers.
    Gru(RecurrentSpec),
    /// Conv1d layers with the activation over the payment history (max pooling between
    /// them), then the flattened result with the static features, dense layers with the
    /// activation and one logit. Reads the layout of `data::sequence`: statics first,
    /// then steps × channels.
    Cnn {
        /// Static features, first in each row.
        statics: usize,
        /// Features per step of the history.
        channels: usize,
        /// Steps of the history.
        steps: usize,
        /// The convolution and dense layers.
        layers: CnnLayers,
        /// The conv and dense layers' activation (relu in models saved before it was a
        /// choice).
        #[serde(default = "relu")]
        activation: Act,
        /// Dropout probability after each dense layer of the head, in training only.
        #[serde(default)]
        dropout: f32,
        /// Per static feature, the sign its head weights are held to (see
        /// `Mlp::monotone`); empty when none is constrained.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        monotone: Vec<i8>,
    },
    /// The mean probability of `members` copies of `model`, each with its own weights
    /// (`--cv K --ensemble`: one member per fold). Member `k`'s parameters are named
    /// `member{k}.` and the member's own names.
    Ensemble {
        /// How many copies.
        members: usize,
        /// The architecture of each.
        model: Box<ModelSpec>,
    },
}

/// Why a monotone MLP takes no periodic embedding.
const NOT_MONOTONE: &str = "periodic features are not monotone in their column: with monotone constraints use the standard or ple numeric encoding";

/// The hidden layers' activation of a model saved without one.
fn relu() -> Act {
    Act::Relu
}

/// The sizes of a recurrent model. The feature matrix holds the `statics` static
/// features first, then the sequence block, time-major and oldest step first: column
/// `statics + t · channels + c`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecurrentSpec {
    /// Static (per-applicant) features, read beside the recurrent output.
    pub statics: usize,
    /// Features per step of the sequence.
    pub channels: usize,
    /// Steps in the sequence.
    pub steps: usize,
    /// Hidden units of each recurrent layer, first to last.
    pub hidden: Vec<usize>,
    /// Whether each layer also runs the sequence backwards.
    #[serde(default)]
    pub bidirectional: bool,
    /// Dense layers between the recurrent output (with the static features) and the
    /// logit.
    #[serde(default)]
    pub head: Vec<usize>,
    /// The activation of the `head` layers (the cells' gates keep theirs).
    #[serde(default = "relu")]
    pub activation: Act,
    /// Dropout probability after each `head` layer, in training only.
    #[serde(default)]
    pub dropout: f32,
    /// Per static feature, the sign its head weights are held to (see
    /// `ModelSpec::Mlp::monotone`); empty when none is constrained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monotone: Vec<i8>,
}

impl RecurrentSpec {
    /// Recurrent layer sizes that work well on the bundled data (the peers' model).
    pub const DEFAULT_HIDDEN: [usize; 2] = [64, 32];

    /// Checks the sizes; `statics + channels · steps` is the number of feature columns.
    pub fn new(
        statics: usize,
        channels: usize,
        steps: usize,
        hidden: &[usize],
        bidirectional: bool,
        head: &[usize],
    ) -> Result<Self> {
        if channels == 0 || steps == 0 {
            return Err(Error::invalid(
                Setting::Sequence,
                format!("a recurrent model needs a sequence: {steps} steps of {channels} channels"),
            ));
        }
        if hidden.is_empty() || hidden.contains(&0) {
            return Err(Error::invalid(
                Setting::HiddenSizes,
                format!("{hidden:?}: a recurrent model needs at least one layer, sizes positive"),
            ));
        }
        if head.contains(&0) {
            return Err(Error::invalid(
                Setting::DenseSizes,
                "dense layer sizes must be positive",
            ));
        }
        Ok(RecurrentSpec {
            statics,
            channels,
            steps,
            hidden: hidden.to_vec(),
            bidirectional,
            head: head.to_vec(),
            activation: Act::Relu,
            dropout: 0.0,
            monotone: Vec::new(),
        })
    }

    /// Appends the model for cells of `kind` to `g`, reading `x` (`[batch, inputs]`).
    fn build(
        &self,
        g: &mut Graph,
        kind: CellKind,
        x: NodeId,
        drop: HiddenDropout,
    ) -> Result<NodeId> {
        let width = self.statics + self.channels * self.steps;
        if g.shape(x).len() != 2 || g.shape(x)[1] != width {
            return Err(Error::shape(
                kind.name(),
                format!("features {:?}: the model reads {width} columns", g.shape(x)),
            ));
        }
        let seq = if self.statics == 0 {
            x
        } else {
            g.slice_cols(x, self.statics, self.channels * self.steps)?
        };
        let out = rnn::rnn_stack(
            g,
            kind,
            kind.name(),
            seq,
            self.steps,
            &self.hidden,
            self.bidirectional,
            None,
            false,
        )?;
        let mut h = out.last;
        let mut width = out.width;
        if self.statics > 0 {
            let statics = g.slice_cols(x, 0, self.statics)?;
            h = g.concat(&[h, statics])?;
            width += self.statics;
        }
        if !self.monotone.is_empty() {
            // The recurrent output is free; the statics after it take their signs.
            let mut signs = vec![0i8; width - self.statics];
            signs.extend(&self.monotone);
            let head_len = self.head.len();
            return monotone::build_dense(
                g,
                h,
                &self.head,
                self.activation,
                &signs,
                |i| match i < head_len {
                    true => format!("head{i}"),
                    false => "out".into(),
                },
                |g, h, i| drop.after(g, h, i),
            );
        }
        for (i, &size) in self.head.iter().enumerate() {
            let w = g.param(&format!("head{i}.weight"), &[width, size])?;
            let b = g.param(&format!("head{i}.bias"), &[size])?;
            h = g.linear(h, w, b, self.activation)?;
            h = drop.after(g, h, i)?;
            width = size;
        }
        let w = g.param("out.weight", &[width, 1])?;
        let b = g.param("out.bias", &[1])?;
        g.linear(h, w, b, Act::Identity)
    }
}

impl ModelSpec {
    /// A multilayer perceptron: `inputs` features, dense ReLU layers of the `hidden`
    /// widths, one logit.
    pub fn mlp(inputs: usize, hidden: &[usize]) -> Result<Self> {
        if inputs == 0 {
            return Err(Error::Internal("the data has no feature columns".into()));
        }
        if hidden.contains(&0) {
            return Err(Error::invalid(
                Setting::HiddenSizes,
                "layer sizes must be positive",
            ));
        }
        Ok(ModelSpec::Mlp {
            inputs,
            hidden: hidden.to_vec(),
            activation: Act::Relu,
            dropout: 0.0,
            monotone: Vec::new(),
            periodic: None,
        })
    }

    /// The same MLP (or ensemble of MLPs) reading `embedding` of its numeric features
    /// (see [`periodic`]); the other models and a monotone MLP refuse it.
    pub fn with_periodic(mut self, embedding: PeriodicEmbedding) -> Result<Self> {
        let refuse = |msg: &str| Err(Error::invalid(Setting::NumericEncoding, msg));
        match &mut self {
            ModelSpec::Mlp {
                monotone, periodic, ..
            } => {
                if !monotone.is_empty() {
                    return refuse(NOT_MONOTONE);
                }
                *periodic = Some(embedding);
            }
            ModelSpec::Ensemble { model, .. } => {
                **model = (**model).clone().with_periodic(embedding)?
            }
            ModelSpec::Lstm(_) | ModelSpec::Gru(_) | ModelSpec::Cnn { .. } => {
                return refuse("periodic embeds the features of an mlp; a sequence model (cnn, lstm, gru) reads standardised numbers (the default for these models)");
            }
        }
        Ok(self)
    }

    /// The periodic embedding in front of the model's dense layers, if any.
    pub fn periodic(&self) -> Option<&PeriodicEmbedding> {
        match self {
            ModelSpec::Mlp { periodic, .. } => periodic.as_ref(),
            ModelSpec::Ensemble { model, .. } => model.periodic(),
            ModelSpec::Lstm(_) | ModelSpec::Gru(_) | ModelSpec::Cnn { .. } => None,
        }
    }

    /// The same model held monotone in its input columns as `signs` says (one per input
    /// column, in the model's order: `+1`, `-1` or `0`; see [`monotone::feature_signs`]).
    /// The MLP can be constrained in any column, a sequence model (cnn, lstm, gru) in its
    /// static features only; signs all 0 constrain nothing.
    pub fn with_monotone(mut self, signs: Vec<i8>) -> Result<Self> {
        let refuse = |msg: String| Err(Error::invalid(Setting::Monotone, msg));
        match &mut self {
            ModelSpec::Mlp {
                inputs,
                monotone,
                activation,
                periodic,
                ..
            } => {
                if periodic.is_some() && signs.iter().any(|&s| s != 0) {
                    return refuse(NOT_MONOTONE.into());
                }
                if signs.len() != *inputs {
                    return refuse(format!(
                        "{} signs for a model of {inputs} input columns",
                        signs.len()
                    ));
                }
                if signs.iter().any(|s| !(-1..=1).contains(s)) {
                    return refuse("a sign must be -1, 0 or +1".into());
                }
                if signs.iter().any(|&s| s != 0) {
                    monotone::check_activation(*activation)?;
                    *monotone = signs;
                } else {
                    monotone.clear();
                }
            }
            ModelSpec::Ensemble { model, .. } => {
                **model = (**model).clone().with_monotone(signs)?
            }
            ModelSpec::Lstm(_) | ModelSpec::Gru(_) | ModelSpec::Cnn { .. } => {
                let (inputs, statics, act) = (self.inputs(), self.statics(), self.activation());
                if signs.len() != inputs {
                    return refuse(format!(
                        "{} signs for a model of {inputs} input columns",
                        signs.len()
                    ));
                }
                if signs.iter().any(|s| !(-1..=1).contains(s)) {
                    return refuse("a sign must be -1, 0 or +1".into());
                }
                if signs[statics..].iter().any(|&s| s != 0) {
                    return refuse(
                        "a sequence model is monotone only in its static features, not in the columns of its sequence history".into(),
                    );
                }
                let kept = match signs[..statics].iter().any(|&s| s != 0) {
                    true => {
                        monotone::check_activation(act)?;
                        signs[..statics].to_vec()
                    }
                    false => Vec::new(),
                };
                match &mut self {
                    ModelSpec::Lstm(r) | ModelSpec::Gru(r) => r.monotone = kept,
                    ModelSpec::Cnn { monotone, .. } => *monotone = kept,
                    _ => {}
                }
            }
        }
        Ok(self)
    }

    /// Static features of a sequence model (read beside its history); 0 for the others.
    fn statics(&self) -> usize {
        match self {
            ModelSpec::Lstm(r) | ModelSpec::Gru(r) => r.statics,
            ModelSpec::Cnn { statics, .. } => *statics,
            ModelSpec::Mlp { .. } => 0,
            ModelSpec::Ensemble { model, .. } => model.statics(),
        }
    }

    /// The sign each input column is held to, in the model's column order (see
    /// [`with_monotone`](Self::with_monotone)); empty when none is constrained.
    pub fn monotone(&self) -> Vec<i8> {
        let statics = match self {
            ModelSpec::Mlp { monotone, .. } => return monotone.clone(),
            ModelSpec::Ensemble { model, .. } => return model.monotone(),
            ModelSpec::Lstm(r) | ModelSpec::Gru(r) => &r.monotone,
            ModelSpec::Cnn { monotone, .. } => monotone,
        };
        if statics.is_empty() {
            return Vec::new();
        }
        let mut signs = statics.clone();
        signs.resize(self.inputs(), 0);
        signs
    }

    /// The name of the weight of the layer that makes the logit.
    fn output_weight(&self) -> Option<String> {
        match self {
            ModelSpec::Mlp { hidden, .. } => Some(format!("dense{}.weight", hidden.len())),
            ModelSpec::Cnn { layers, .. } => Some(format!("dense{}.weight", layers.dense.len())),
            ModelSpec::Lstm(_) | ModelSpec::Gru(_) => Some("out.weight".into()),
            ModelSpec::Ensemble { .. } => None,
        }
    }

    /// An LSTM model (see `RecurrentSpec::new`).
    pub fn lstm(spec: RecurrentSpec) -> Self {
        ModelSpec::Lstm(spec)
    }

    /// A GRU model (see `RecurrentSpec::new`).
    pub fn gru(spec: RecurrentSpec) -> Self {
        ModelSpec::Gru(spec)
    }

    /// The CNN over `steps` steps of `channels` history channels and `statics` static
    /// features (see `data::sequence::SequenceLayout`).
    pub fn cnn(statics: usize, channels: usize, steps: usize, layers: CnnLayers) -> Result<Self> {
        if channels == 0 || steps == 0 {
            return Err(Error::invalid(
                Setting::Sequence,
                "the cnn model needs at least one sequence of at least one step",
            ));
        }
        layers.lengths(steps)?;
        Ok(ModelSpec::Cnn {
            statics,
            channels,
            steps,
            layers,
            activation: Act::Relu,
            dropout: 0.0,
            monotone: Vec::new(),
        })
    }

    /// The same model with `act` in its hidden layers, in place of ReLU: the dense and
    /// conv layers (not the output layer, nor the recurrent cells' gates).
    pub fn with_activation(mut self, act: Act) -> Self {
        match &mut self {
            ModelSpec::Mlp { activation, .. } | ModelSpec::Cnn { activation, .. } => {
                *activation = act
            }
            ModelSpec::Lstm(r) | ModelSpec::Gru(r) => r.activation = act,
            ModelSpec::Ensemble { model, .. } => **model = (**model).clone().with_activation(act),
        }
        self
    }

    /// The activation of the hidden layers (see `with_activation`).
    pub fn activation(&self) -> Act {
        match self {
            ModelSpec::Mlp { activation, .. } | ModelSpec::Cnn { activation, .. } => *activation,
            ModelSpec::Lstm(r) | ModelSpec::Gru(r) => r.activation,
            ModelSpec::Ensemble { model, .. } => model.activation(),
        }
    }

    /// The same model with dropout probability `p` after each hidden dense layer in
    /// training (the mlp's hidden layers, the dense head of the cnn, lstm and gru); 0
    /// for none. Scoring never drops (see [`build_training`](Self::build_training)).
    pub fn with_dropout(mut self, p: f32) -> Result<Self> {
        check_dropout(p)?;
        match &mut self {
            ModelSpec::Mlp { dropout, .. } | ModelSpec::Cnn { dropout, .. } => *dropout = p,
            ModelSpec::Lstm(r) | ModelSpec::Gru(r) => r.dropout = p,
            ModelSpec::Ensemble { model, .. } => **model = (**model).clone().with_dropout(p)?,
        }
        Ok(self)
    }

    /// The dropout probability of the hidden layers in training (see `with_dropout`).
    pub fn dropout(&self) -> f32 {
        match self {
            ModelSpec::Mlp { dropout, .. } | ModelSpec::Cnn { dropout, .. } => *dropout,
            ModelSpec::Lstm(r) | ModelSpec::Gru(r) => r.dropout,
            ModelSpec::Ensemble { model, .. } => model.dropout(),
        }
    }

    /// Number of feature columns the model reads.
    pub fn inputs(&self) -> usize {
        match self {
            ModelSpec::Mlp { inputs, .. } => *inputs,
            ModelSpec::Lstm(r) | ModelSpec::Gru(r) => r.statics + r.channels * r.steps,
            ModelSpec::Cnn {
                statics,
                channels,
                steps,
                ..
            } => statics + channels * steps,
            ModelSpec::Ensemble { model, .. } => model.inputs(),
        }
    }

    /// An ensemble of `members` copies of `model` (see [`ModelSpec::Ensemble`]).
    pub fn ensemble(model: ModelSpec, members: usize) -> Result<Self> {
        if members == 0 || matches!(model, ModelSpec::Ensemble { .. }) {
            return Err(Error::Internal(
                "an ensemble holds one or more models that are not ensembles".into(),
            ));
        }
        Ok(ModelSpec::Ensemble {
            members,
            model: Box::new(model),
        })
    }

    /// Appends the model to `g`, reading `x` (`[batch, inputs]`); returns the probability
    /// of default per row, `[batch, 1]`: the sigmoid of [`build`](Self::build)'s logits,
    /// or an ensemble's mean of its members' probabilities.
    pub fn build_probability(&self, g: &mut Graph, x: NodeId) -> Result<NodeId> {
        let ModelSpec::Ensemble { members, model } = self else {
            let logits = self.build(g, x)?;
            return g.sigmoid(logits);
        };
        let mut sum = None;
        for k in 0..*members {
            g.set_param_scope(&format!("member{k}."));
            let p = model.build_probability(g, x)?;
            sum = Some(match sum {
                None => p,
                Some(s) => g.add(s, p)?,
            });
        }
        g.set_param_scope("");
        let sum = sum.ok_or_else(|| Error::Internal("an ensemble without members".into()))?;
        let shape = g.shape(sum).to_vec();
        g.reduce_to(sum, &shape, 1.0 / *members as f32)
    }

    /// Appends the model to `g`, reading `x` (`[batch, inputs]`); returns the logits
    /// `[batch, 1]`. This is the model that scores: no dropout. An ensemble has no logit
    /// of its own (it averages probabilities): score it with
    /// [`build_probability`](Self::build_probability).
    pub fn build(&self, g: &mut Graph, x: NodeId) -> Result<NodeId> {
        self.build_with(g, x, HiddenDropout::NONE)
    }

    /// [`build`](Self::build) for a training step: the same nodes and parameters, with
    /// the model's dropout after its hidden layers. `seed` (the run's) picks the masks,
    /// which change with the optimizer step (`Op::Dropout`).
    pub fn build_training(&self, g: &mut Graph, x: NodeId, seed: u64) -> Result<NodeId> {
        let p = self.dropout();
        check_dropout(p)?;
        self.build_with(
            g,
            x,
            HiddenDropout {
                p,
                seed: (seed ^ (seed >> 32)) as u32,
            },
        )
    }

    fn build_with(&self, g: &mut Graph, x: NodeId, drop: HiddenDropout) -> Result<NodeId> {
        match self {
            ModelSpec::Mlp {
                hidden,
                activation,
                monotone: signs,
                ..
            } if !signs.is_empty() => monotone::build_dense(
                g,
                x,
                hidden,
                *activation,
                signs,
                |i| format!("dense{i}"),
                |g, h, i| drop.after(g, h, i),
            ),
            ModelSpec::Mlp {
                inputs,
                hidden,
                activation,
                periodic,
                ..
            } => {
                let (mut h, mut width) = match periodic {
                    Some(p) => (p.build(g, x)?, p.outputs(*inputs)),
                    None => (x, *inputs),
                };
                for (i, &out) in hidden.iter().chain(std::iter::once(&1)).enumerate() {
                    let w = g.param(&format!("dense{i}.weight"), &[width, out])?;
                    let b = g.param(&format!("dense{i}.bias"), &[out])?;
                    let act = if i < hidden.len() {
                        *activation
                    } else {
                        Act::Identity
                    };
                    h = g.linear(h, w, b, act)?;
                    if i < hidden.len() {
                        h = drop.after(g, h, i)?;
                    }
                    width = out;
                }
                Ok(h)
            }
            ModelSpec::Lstm(r) => r.build(g, CellKind::Lstm, x, drop),
            ModelSpec::Gru(r) => r.build(g, CellKind::Gru, x, drop),
            ModelSpec::Cnn {
                statics,
                channels,
                steps,
                layers,
                activation,
                monotone: signs,
                ..
            } => cnn::build(
                g,
                x,
                (*statics, *channels, *steps),
                layers,
                *activation,
                signs,
                drop,
            ),
            ModelSpec::Ensemble { .. } => Err(Error::Internal(
                "an ensemble is scored by its mean probability, not trained as one model".into(),
            )),
        }
    }
}

/// Refuses a dropout probability outside `[0, 1)`.
pub fn check_dropout(p: f32) -> Result<()> {
    if (0.0..1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::invalid(
            Setting::Dropout,
            format!("{p} must be at least 0 and below 1"),
        ))
    }
}

/// The dropout a graph applies after each hidden layer: none when scoring.
#[derive(Clone, Copy, Debug)]
struct HiddenDropout {
    p: f32,
    seed: u32,
}

impl HiddenDropout {
    const NONE: HiddenDropout = HiddenDropout { p: 0.0, seed: 0 };

    /// `h` after dropout, for hidden layer `layer` (each layer draws its own masks).
    fn after(self, g: &mut Graph, h: NodeId, layer: usize) -> Result<NodeId> {
        let seed = self
            .seed
            .wrapping_add((layer as u32 + 1).wrapping_mul(0x9e37_79b9));
        g.dropout(h, self.p, seed)
    }
}

/// Packs the weights of an ensemble's members (each packed as its model's layout) into
/// the ensemble's layout.
pub fn pack_ensemble(ensemble: &ModelSpec, members: &[Vec<f32>]) -> Result<Vec<f32>> {
    let ModelSpec::Ensemble { members: k, model } = ensemble else {
        return Err(Error::Internal("not an ensemble".into()));
    };
    if members.len() != *k {
        return Err(Error::size_mismatch(
            format!("the members' weights of an ensemble of {k}"),
            members.len(),
            *k,
        ));
    }
    let (member_specs, member_layout) = crate::model_io::param_layout(model)?;
    let (_, layout) = crate::model_io::param_layout(ensemble)?;
    let per = member_specs.len();
    let mut packed = vec![0.0f32; layout.total];
    for (m, weights) in members.iter().enumerate() {
        if weights.len() != member_layout.total {
            return Err(Error::size_mismatch(
                format!("the weights of ensemble member {m}"),
                weights.len(),
                member_layout.total,
            ));
        }
        for j in 0..per {
            let (from, len) = (member_layout.offsets[j], member_layout.lens[j]);
            let to = layout.offsets[m * per + j];
            packed[to..to + len].copy_from_slice(&weights[from..from + len]);
        }
    }
    Ok(packed)
}

impl ModelSpec {
    /// Initial values for the parameters of this model's graph `g` ([`init_params`]),
    /// with the output weights of a monotone MLP scaled down (see
    /// `monotone::OUTPUT_INIT_SCALE`) and a periodic embedding's frequencies and phases
    /// as [`PeriodicEmbedding::initialise`] sets them.
    pub fn initial_params(&self, g: &Graph, layout: &ParamLayout, seed: u64) -> Result<Vec<f32>> {
        let mut flat = init_params(g, layout, seed)?;
        if let (false, Some(weight)) = (self.monotone().is_empty(), self.output_weight()) {
            monotone::scale_output_init(g, layout, &weight, &mut flat);
        }
        if let Some(periodic) = self.periodic() {
            periodic.initialise(g, layout, seed, &mut flat);
        }
        Ok(flat)
    }
}

/// Initial values for every parameter of `g`, packed by `layout`: uniform in
/// ±1/sqrt(fan_in) for weights and biases alike, as PyTorch's `nn.Linear` and `nn.Conv1d`
/// do (so the peers start from the same distribution). `fan_in` is a dense weight's
/// first dimension (`[in, out]`) and a conv weight's `c·k` (`[o, c, k…]`, rank 3 or
/// more); a bias takes the fan-in of the weight of the same layer. Recurrent layers start
/// as PyTorch's do, U(±1/sqrt(hidden)) (see `rnn::init_bound`). A model too large for
/// the machine's memory is an error, not an abort.
pub fn init_params(g: &Graph, layout: &ParamLayout, seed: u64) -> Result<Vec<f32>> {
    let fan_in_of = |shape: &[usize]| {
        if shape.len() >= 3 {
            shape[1..].iter().product()
        } else {
            shape[0]
        }
    };
    let mut rng = Rng::new(seed ^ 0x1D1D);
    let mut flat = crate::engine::exec::zeroed_words(layout.total, "the model's parameters")?;
    for (i, p) in g.params.iter().enumerate() {
        let fan_in = match p.name.strip_suffix(".bias") {
            Some(layer) => g
                .params
                .iter()
                .find(|q| q.name == format!("{layer}.weight"))
                .map_or(p.shape[0], |w| fan_in_of(&w.shape)),
            None => fan_in_of(&p.shape),
        };
        let bound = rnn::init_bound(g, &p.name).unwrap_or(1.0 / (fan_in as f64).sqrt());
        for v in &mut flat[layout.offsets[i]..layout.offsets[i] + layout.lens[i]] {
            *v = rng.range(-bound, bound) as f32;
        }
    }
    Ok(flat)
}
