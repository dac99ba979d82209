//! The library's one error type. The CLI prints it and exits non-zero; nothing in the
//! library panics on bad input.

use std::path::PathBuf;

/// Everything the library can fail with; each variant says what went wrong and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor shape that an op cannot accept, found while the graph is built.
    #[error("shape error in {op}: {detail}")]
    Shape {
        /// The op being added.
        op: String,
        /// What is wrong with the shapes.
        detail: String,
    },

    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// Input data that cannot be used, with the place it was found.
    #[error("{path}{}: {}{message}", location(.line, .row, .column), about(.setting))]
    Data {
        /// The file (or the bundled data's name).
        path: PathBuf,
        /// The line in the file, when one line of a text file (CSV) is at fault.
        line: Option<u64>,
        /// The 1-based data row, when one row of a file without lines (Parquet) is at
        /// fault.
        row: Option<u64>,
        /// The column's name, when one column is at fault.
        column: Option<String>,
        /// The caller's setting the data contradicts (a column it named that is not
        /// there, a positive class the target does not have), shown before the message:
        /// in words by the library, as its flag by the CLI.
        setting: Option<Setting>,
        /// What is wrong.
        message: String,
    },

    /// A setting the caller chose that the library refuses: which one, and why. The CLI
    /// shows it under the name of the flag that set it.
    #[error("invalid {}: {message}", setting.describe())]
    Invalid {
        /// The setting refused.
        setting: Setting,
        /// Why.
        message: String,
    },

    /// A command-line value that makes no sense (raised by the CLI itself).
    #[error("invalid value for {flag}: {message}")]
    Flag {
        /// The flag, as typed (`--lr`).
        flag: String,
        /// Why its value is refused.
        message: String,
    },

    /// A saved model directory that cannot be used (missing, damaged, another format
    /// version); `source` says what is wrong with it.
    #[error("{source}")]
    BadModel {
        /// The model directory.
        dir: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<Error>,
    },

    /// Training stopped on request (e.g. SIGTERM) in the middle of a run; `checkpoint`
    /// is where it can be continued from.
    #[error("stopped at epoch {epoch}, step {step} of {steps}{}", checkpoint_note(.checkpoint))]
    Interrupted {
        /// The epoch in progress.
        epoch: usize,
        /// Its steps done.
        step: usize,
        /// Its steps in all.
        steps: usize,
        /// The checkpoint written at that point, if the run keeps one.
        checkpoint: Option<PathBuf>,
    },

    /// The GPU could not be set up or a kernel could not run.
    #[error("GPU: {0}")]
    Gpu(String),

    /// Training blew up: the loss stopped being a finite, sane number.
    #[error("epoch {epoch}: {what}; training stopped{}", kept_note(.kept))]
    Diverged {
        /// The epoch it happened in.
        epoch: usize,
        /// Which number went wrong, and how.
        what: String,
        /// The last completed epoch and the checkpoint file that holds it, if this run
        /// (or the run it resumed in place) left one.
        kept: Option<(usize, PathBuf)>,
    },

    /// A file riskgrad wrote (a model's config.json or weights, a checkpoint, a
    /// stability baseline), or the model directory holding them, that is missing or
    /// cannot be read back: damaged, edited by hand, or of another format version.
    #[error("{}: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// Numbers handed to the library whose count does not fit what they go with (a
    /// matrix that is not whole rows of the model's features, a weight vector of
    /// another model).
    #[error("{what}: {got} values, expected {expected}")]
    SizeMismatch {
        /// What was handed over, and what it must fit.
        what: String,
        /// The values given.
        got: usize,
        /// The values it must have.
        expected: usize,
    },

    /// A row-major matrix handed to the library whose values are not whole rows.
    #[error("{values} values are not whole rows of {width} {what}")]
    NotWholeRows {
        /// What a row holds ("features", "columns").
        what: &'static str,
        /// The values given.
        values: usize,
        /// The values a row must have.
        width: usize,
    },

    /// Memory this machine could not allocate, and what it was for.
    #[error(
        "{what} would take {:.1} GB of memory, more than this machine can allocate; a smaller \
         model or fewer rows per step needs less",
        *bytes as f64 / 1e9
    )]
    OutOfMemory {
        /// What needed it.
        what: String,
        /// How much, in bytes.
        bytes: u64,
    },

    /// A tensor larger than one storage binding of the adapter can hold: the GPU's limit,
    /// not the machine's memory.
    #[error(
        "a tensor of {:.2} GB is over the largest storage binding of {device} ({:.2} GB); a \
         smaller model or fewer rows per step needs less",
        *bytes as f64 / 1e9,
        *limit as f64 / 1e9
    )]
    OverBinding {
        /// The adapter's name.
        device: String,
        /// The tensor's size, in bytes.
        bytes: u64,
        /// The adapter's largest binding, in bytes.
        limit: u64,
    },

    /// A graph asks for something the engine does not do (a second derivative, a
    /// gradient through a view that carries none).
    #[error("{0}")]
    Unsupported(String),

    /// A broken invariant: the library was called against its contract (a plan or an
    /// input that does not exist, a plan that overwrites what it still reads), or a
    /// kernel gave a wrong result. A bug in riskgrad, its caller or the device.
    #[error("{0}")]
    Internal(String),
}

fn kept_note(kept: &Option<(usize, PathBuf)>) -> String {
    match kept {
        Some((epoch, path)) => format!(
            "; the last good checkpoint (epoch {epoch}) is kept in {}",
            path.display()
        ),
        None => "; no epoch finished, so there is no checkpoint".into(),
    }
}

/// The settings a library caller chooses, named in [`Error::Invalid`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// Rows per training, scoring or explaining step.
    BatchSize,
    /// Epochs of training in all.
    Epochs,
    /// Epochs without a better validation AUC before training stops.
    EarlyStop,
    /// Integrated-gradient steps of an explanation.
    ExplainSteps,
    /// The share of rows held out for validation.
    ValidationSplit,
    /// The share of the training rows set aside to decide early stopping.
    StopSplit,
    /// Hidden layer sizes (MLP) or recurrent layer sizes (LSTM/GRU).
    HiddenSizes,
    /// Dense layer sizes of a sequence model's head.
    DenseSizes,
    /// The dropout probability after the hidden layers.
    Dropout,
    /// Output channels of the CNN's conv layers.
    ConvChannels,
    /// The CNN's kernel width.
    ConvKernel,
    /// The CNN's pooling window.
    Pool,
    /// The columns forming a sequence model's time series.
    Sequence,
    /// Whether the sequence columns are oldest- or newest-first.
    TimeOrder,
    /// Columns forced to be categorical.
    Categorical,
    /// Columns forced to be numeric.
    Numeric,
    /// Columns given a signed log transform.
    SignedLog,
    /// How numeric columns become features.
    NumericEncoding,
    /// The target column.
    Target,
    /// The device to run on.
    Device,
    /// Columns the model must be monotone in.
    Monotone,
    /// The column holding each row's date.
    Date,
    /// Threads of the CPU backend.
    Threads,
    /// The target's value that means a default (the positive class).
    Positive,
    /// Columns left out of the model.
    Drop,
    /// Whether cells that are not numbers in a numeric column are refused rather than
    /// read as missing.
    Strict,
    /// The seed of the split, the initial weights and the shuffles.
    Seed,
    /// The weight of a default's loss term.
    PosWeight,
    /// The update rule.
    Optimizer,
    /// SGD's momentum.
    Momentum,
    /// AdamW's weight decay.
    WeightDecay,
    /// The kind of model (mlp, cnn, lstm, gru, logistic).
    Model,
    /// The hidden layers' activation.
    Activation,
    /// Whether a recurrent layer also reads the history backwards.
    Bidirectional,
    /// Cross-validation's number of folds.
    Folds,
    /// The checkpoint a run continues from.
    Resume,
    /// Which rows of a labelled file to evaluate (all, or those held out in training).
    Rows,
    /// The protected column of a fairness check.
    Protected,
    /// Networks trained and averaged in one run.
    Members,
}

impl Setting {
    /// What the setting is, in words, for messages outside the CLI.
    pub fn describe(self) -> &'static str {
        match self {
            Setting::BatchSize => "batch size",
            Setting::Epochs => "number of epochs",
            Setting::EarlyStop => "early-stopping patience",
            Setting::ExplainSteps => "number of integrated-gradient steps",
            Setting::ValidationSplit => "validation split",
            Setting::StopSplit => "early-stopping split",
            Setting::HiddenSizes => "hidden layer sizes",
            Setting::DenseSizes => "dense layer sizes",
            Setting::Dropout => "dropout probability",
            Setting::ConvChannels => "conv channels",
            Setting::ConvKernel => "conv kernel width",
            Setting::Pool => "pooling window",
            Setting::Sequence => "sequence columns",
            Setting::TimeOrder => "time order",
            Setting::Categorical => "categorical columns",
            Setting::Numeric => "numeric columns",
            Setting::SignedLog => "signed-log columns",
            Setting::NumericEncoding => "numeric encoding",
            Setting::Target => "target column",
            Setting::Device => "device",
            Setting::Monotone => "monotone constraints",
            Setting::Date => "date column",
            Setting::Threads => "number of CPU threads",
            Setting::Positive => "positive class",
            Setting::Drop => "dropped columns",
            Setting::Strict => "strict reading",
            Setting::Seed => "seed",
            Setting::PosWeight => "positive-class weight",
            Setting::Optimizer => "optimizer",
            Setting::Momentum => "momentum",
            Setting::WeightDecay => "weight decay",
            Setting::Model => "model kind",
            Setting::Activation => "activation",
            Setting::Bidirectional => "bidirectional reading",
            Setting::Folds => "number of cross-validation folds",
            Setting::Resume => "checkpoint to resume",
            Setting::Rows => "rows to evaluate",
            Setting::Protected => "protected column",
            Setting::Members => "number of member networks",
        }
    }
}

fn about(setting: &Option<Setting>) -> String {
    setting.map_or(String::new(), |s| format!("{}: ", s.describe()))
}

fn location(line: &Option<u64>, row: &Option<u64>, column: &Option<String>) -> String {
    let place = match (line, row) {
        (Some(l), _) => format!(", line {l}"),
        (None, Some(r)) => format!(", row {r}"),
        (None, None) => String::new(),
    };
    match column {
        Some(c) => format!("{place}, column {c:?}"),
        None => place,
    }
}

impl Error {
    /// A [`Error::Shape`] for `op`.
    pub fn shape(op: &str, detail: impl Into<String>) -> Self {
        Error::Shape {
            op: op.to_string(),
            detail: detail.into(),
        }
    }
    /// The error as shown to someone who knows the settings by other names (the CLI's
    /// flags): `name_of` names the setting of an [`Error::Invalid`] or [`Error::Data`].
    pub fn naming_settings(&self, name_of: impl Fn(Setting) -> String) -> String {
        match self {
            Error::Invalid { setting, message } => {
                format!("invalid value for {}: {message}", name_of(*setting))
            }
            Error::Data {
                path,
                line,
                row,
                column,
                setting: Some(setting),
                message,
            } => format!(
                "{}{}: {}: {message}",
                path.display(),
                location(line, row, column),
                name_of(*setting)
            ),
            _ => self.to_string(),
        }
    }
    /// This error, when it is an [`Error::Data`], marked as contradicting `setting`.
    pub fn about(mut self, setting: Setting) -> Self {
        if let Error::Data { setting: about, .. } = &mut self {
            *about = Some(setting);
        }
        self
    }
    /// A refused setting (see [`Setting`]).
    pub fn invalid(setting: Setting, message: impl Into<String>) -> Self {
        Error::Invalid {
            setting,
            message: message.into(),
        }
    }
    /// A refused command-line value ([`Error::Flag`]); for the CLI only.
    pub fn flag(flag: &str, message: impl Into<String>) -> Self {
        Error::Flag {
            flag: flag.to_string(),
            message: message.into(),
        }
    }
    /// An [`Error::Internal`], from anything that describes itself.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        Error::Internal(what.to_string())
    }
    /// An [`Error::Data`] about the file `path` as a whole (no line, row or column).
    pub fn data_file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            line: None,
            row: None,
            column: None,
            setting: None,
            message: message.into(),
        }
    }
    /// An [`Error::Corrupt`] for the file `path`.
    pub fn corrupt(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            message: message.into(),
        }
    }
    /// An [`Error::SizeMismatch`].
    pub fn size_mismatch(what: impl Into<String>, got: usize, expected: usize) -> Self {
        Error::SizeMismatch {
            what: what.into(),
            got,
            expected,
        }
    }
    /// A [`Error::Io`] naming `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The library's result type.
pub type Result<T> = std::result::Result<T, Error>;

fn checkpoint_note(checkpoint: &Option<PathBuf>) -> String {
    checkpoint.as_ref().map_or(String::new(), |p| {
        format!("; the checkpoint {} holds that point", p.display())
    })
}
