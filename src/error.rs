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
    #[error("{path}{}: {message}", location(.line, .column))]
    Data {
        /// The file (or the bundled data's name).
        path: PathBuf,
        /// The line in the file, when one line is at fault.
        line: Option<u64>,
        /// The column's name, when one column is at fault.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },

    /// A command-line value that makes no sense.
    #[error("invalid value for {flag}: {message}")]
    Flag {
        /// The flag, as typed (`--lr`).
        flag: String,
        /// Why its value is refused.
        message: String,
    },

    /// The GPU could not be set up or a kernel could not run.
    #[error("GPU: {0}")]
    Gpu(String),

    /// Training blew up: the loss or the scores stopped being finite numbers.
    #[error("epoch {epoch}: {what}; training stopped (try a lower --lr)")]
    Diverged {
        /// The epoch it happened in.
        epoch: usize,
        /// Which number stopped being finite.
        what: String,
    },

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
    /// A [`Error::Shape`] for `op`.
    pub fn shape(op: &str, detail: impl Into<String>) -> Self {
        Error::Shape {
            op: op.to_string(),
            detail: detail.into(),
        }
    }
    /// A [`Error::Flag`] for `flag`.
    pub fn flag(flag: &str, message: impl Into<String>) -> Self {
        Error::Flag {
            flag: flag.to_string(),
            message: message.into(),
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
