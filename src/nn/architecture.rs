//! The network a caller asks for, before the data is known: its kind and the sizes and
//! options of its layers. With the prepared data (its feature count, the sequence
//! models' layout, the numeric columns a periodic embedding reads, the columns a
//! monotone constraint names) it becomes a [`ModelSpec`].

use super::monotone::{feature_signs, MonotoneConstraint};
use super::periodic::{self, PeriodicEmbedding};
use super::{CnnLayers, ModelSpec, RecurrentSpec};
use crate::data::sequence::{SequenceLayout, TimeOrder};
use crate::data::{NumericEncoding, Prepared};
use crate::engine::graph::Act;
use crate::error::Result;

/// The kinds of network (and the logistic regression) `riskgrad train` fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkKind {
    /// Dense layers.
    Mlp,
    /// 1-D convolutions over the payment history, then a dense head.
    Cnn,
    /// Stacked LSTM layers over the payment history, then a dense head.
    Lstm,
    /// Stacked GRU layers over the payment history, then a dense head.
    Gru,
}

impl NetworkKind {
    /// Whether the network reads a payment-history tensor (a [`SequenceLayout`]).
    pub fn uses_sequences(self) -> bool {
        !matches!(self, NetworkKind::Mlp)
    }
}

/// The layers asked for; which fields apply depends on the [`NetworkKind`].
#[derive(Clone, Debug)]
pub struct Architecture {
    /// The kind of network.
    pub kind: NetworkKind,
    /// The mlp's hidden layer sizes, or the lstm's and gru's recurrent layer sizes.
    pub hidden: Vec<usize>,
    /// The activation of the hidden (dense and conv) layers.
    pub activation: Act,
    /// Dropout after each hidden dense layer, in training only.
    pub dropout: f32,
    /// The cnn's conv layers, kernel width and pooling window (its `dense` is ignored:
    /// see `dense`).
    pub cnn: CnnLayers,
    /// Dense layers of a sequence model's head; `None`: the cnn's default, none for
    /// lstm and gru.
    pub dense: Option<Vec<usize>>,
    /// Whether the recurrent layers also read the history backwards.
    pub bidirectional: bool,
    /// Columns the network must be monotone in, and in which direction.
    pub monotone: Vec<MonotoneConstraint>,
    /// How the numeric columns became features: `Periodic` adds the learned embedding.
    pub numeric_encoding: NumericEncoding,
    /// A sequence model's history: one column list or range per channel (empty: the
    /// bundled data's), and whether each lists its columns oldest- or newest-first.
    pub sequence: Vec<String>,
    /// The order of the `sequence` columns.
    pub time_order: Option<TimeOrder>,
}

impl Architecture {
    /// A sequence model's layout of `prepared`'s features, applied to its rows (`None`
    /// for an mlp): the saved model keeps the column order, so that prediction arranges
    /// raw rows the same way.
    ///
    /// Errors: `sequence` columns the data does not have or cannot lay out.
    pub fn layout(&self, prepared: &mut Prepared) -> Result<Option<SequenceLayout>> {
        if !self.kind.uses_sequences() {
            return Ok(None);
        }
        let layout =
            SequenceLayout::from_flags(&prepared.feature_names, &self.sequence, self.time_order)?;
        layout.apply(prepared)?;
        Ok(Some(layout))
    }

    /// The network for `prepared`, its features in `layout` for a sequence model (see
    /// [`layout`](Self::layout)).
    ///
    /// Errors: sizes out of range, a monotone constraint on a column that is not a
    /// numeric input, a sequence model without a layout.
    pub fn model_spec(
        &self,
        prepared: &Prepared,
        layout: Option<&SequenceLayout>,
    ) -> Result<ModelSpec> {
        let spec = match (self.kind, layout) {
            (NetworkKind::Cnn, Some(l)) => ModelSpec::cnn(
                l.statics(),
                l.channels(),
                l.steps(),
                CnnLayers {
                    dense: self
                        .dense
                        .clone()
                        .unwrap_or_else(|| CnnLayers::default().dense),
                    ..self.cnn.clone()
                },
            )?,
            (NetworkKind::Lstm | NetworkKind::Gru, Some(l)) => {
                let spec = RecurrentSpec::new(
                    l.statics(),
                    l.channels(),
                    l.steps(),
                    &self.hidden,
                    self.bidirectional,
                    self.dense.as_deref().unwrap_or(&[]),
                )?;
                match self.kind {
                    NetworkKind::Lstm => ModelSpec::lstm(spec),
                    _ => ModelSpec::gru(spec),
                }
            }
            _ => ModelSpec::mlp(prepared.n_features(), &self.hidden)?,
        }
        .with_activation(self.activation)
        .with_dropout(self.dropout)?;
        let spec = match self.numeric_encoding {
            NumericEncoding::Periodic => spec.with_periodic(PeriodicEmbedding::new(
                periodic::numeric_features(&prepared.preprocessor),
                prepared.n_features(),
            )?)?,
            NumericEncoding::Standard | NumericEncoding::Ple => spec,
        };
        if self.monotone.is_empty() {
            return Ok(spec);
        }
        // Signs per preprocessed feature, then in the model's column order.
        let signs = feature_signs(&prepared.preprocessor, &self.monotone)?;
        let signs = match layout {
            Some(l) => l.source.iter().map(|&j| signs[j]).collect(),
            None => signs,
        };
        spec.with_monotone(signs)
    }
}
