//! A model spec in words: a short label for logs, reports and metrics.json, and a longer
//! description for the model card.

use super::ModelSpec;

impl ModelSpec {
    /// A short label: `mlp 64-32`, `cnn conv 16 k3 pool 2 dense 32`, `lstm 64-32`,
    /// `ensemble of 5 mlp 64-32`; a periodic embedding adds ` periodic`.
    pub fn label(&self) -> String {
        match self {
            ModelSpec::Mlp {
                hidden, periodic, ..
            } => format!(
                "mlp {}{}",
                dashed(hidden),
                if periodic.is_some() { " periodic" } else { "" }
            ),
            ModelSpec::Cnn { layers, .. } => format!(
                "cnn conv {} k{} pool {} dense {}",
                dashed(&layers.conv),
                layers.kernel,
                layers.pool,
                dashed(&layers.dense)
            ),
            ModelSpec::Lstm(r) | ModelSpec::Gru(r) => {
                let kind = if matches!(self, ModelSpec::Lstm(_)) {
                    "lstm"
                } else {
                    "gru"
                };
                let direction = if r.bidirectional {
                    "bidirectional "
                } else {
                    ""
                };
                format!("{direction}{kind} {}", dashed(&r.hidden))
            }
            ModelSpec::Ensemble { members, model } => {
                format!("ensemble of {members} {}", model.label())
            }
        }
    }

    /// The model in a sentence, for the model card: the architecture, activation,
    /// dropout and any periodic embedding.
    pub fn describe(&self) -> String {
        match self {
            ModelSpec::Mlp { hidden, .. } if hidden.is_empty() => {
                "logistic regression (no hidden layer)".into()
            }
            ModelSpec::Mlp {
                hidden,
                activation,
                dropout,
                periodic,
                ..
            } => {
                let embedding = match periodic {
                    Some(p) => format!(
                        ", after a periodic embedding of {} numeric features ({} frequency pairs, {} outputs each)",
                        p.features.len(),
                        p.frequencies,
                        p.width
                    ),
                    None => String::new(),
                };
                format!(
                    "MLP, hidden layers {}, {activation}{}{embedding}",
                    dashed(hidden),
                    dropout_text(*dropout)
                )
            }
            ModelSpec::Cnn {
                layers,
                activation,
                dropout,
                ..
            } => format!(
                "CNN over the payment history, conv {} (kernel {}, pool {}), dense {}, {activation}{}",
                dashed(&layers.conv),
                layers.kernel,
                layers.pool,
                dashed(&layers.dense),
                dropout_text(*dropout)
            ),
            ModelSpec::Lstm(r) => format!("LSTM {} over the payment history", dashed(&r.hidden)),
            ModelSpec::Gru(r) => format!("GRU {} over the payment history", dashed(&r.hidden)),
            ModelSpec::Ensemble { members, model } => {
                format!("ensemble of {members} × {}", model.describe())
            }
        }
    }
}

/// Layer sizes as `64-32`.
fn dashed(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join("-")
}

fn dropout_text(p: f32) -> String {
    if p > 0.0 {
        format!(", dropout {p}")
    } else {
        String::new()
    }
}
