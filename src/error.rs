//! The library's one error type. The CLI prints it and exits non-zero; nothing in the
//! library panics on bad input.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor shape that an op cannot accept, found while the graph is built.
    #[error("shape error in {op}: {detail}")]
    Shape { op: String, detail: String },

    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Input data that cannot be used, with the place it was found.
    #[error("{path}{}: {message}", location(.line, .column))]
    Data {
        path: PathBuf,
        line: Option<u64>,
        column: Option<String>,
        message: String,
    },

    /// A command-line value that makes no sense.
    #[error("invalid value for {flag}: {message}")]
    Flag { flag: String, message: String },

    /// The GPU could not be set up or a kernel could not run.
    #[error("GPU: {0}")]
    Gpu(String),

    /// Training blew up: the loss or the scores stopped being finite numbers.
    #[error("epoch {epoch}: {what}; training stopped (try a lower --lr)")]
    Diverged { epoch: usize, what: String },

    /// Anything else the engine refuses to do, with the reason.
    #[error("{0}")]
    Other(String),
}

fn location(line: &Option<u64>, column: &Option<String>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(", line {l}, column {c:?}"),
        (Some(l), None) => format!(", line {l}"),
        (None, Some(c)) => format!(", column {c:?}"),
        (None, None) => String::new(),
    }
}

impl Error {
    pub fn shape(op: &str, detail: impl Into<String>) -> Self {
        Error::Shape {
            op: op.to_string(),
            detail: detail.into(),
        }
    }
    pub fn flag(flag: &str, message: impl Into<String>) -> Self {
        Error::Flag {
            flag: flag.to_string(),
            message: message.into(),
        }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
