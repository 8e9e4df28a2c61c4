//! One error type for the whole crate: every failure a user can cause ends here, as a message
//! that names the file, key or value at fault (never a panic). Build errors with the
//! constructors below rather than by hand.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in a clrtrain run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration (file or flags) is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A command-line value outside the configuration is invalid.
    #[error("invalid argument: {0}")]
    Argument(String),
    /// A dataset file or folder is missing, truncated, unreadable or not the expected one.
    #[error("dataset error in {path}: {message}")]
    Data { path: PathBuf, message: String },
    /// Downloading the dataset failed.
    #[error("download failed: {0}")]
    Download(String),
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Something to be written could not be encoded (TOML, JSON).
    #[error("cannot encode {what}: {message}")]
    Encode { what: &'static str, message: String },
    /// The requested compute backend is unavailable.
    #[error("backend error: {0}")]
    Backend(String),
    /// The training loss became NaN or infinite.
    #[error(
        "training diverged: loss became {loss} at iteration {iteration} (learning rate {lr:.3e}); \
         outputs written so far and the last checkpoint are kept; try a lower max_lr"
    )]
    Diverged { iteration: u64, lr: f64, loss: f64 },
    /// A plot could not be drawn.
    #[error("cannot draw {path}: {message}")]
    Plot { path: PathBuf, message: String },
    /// The run was stopped by a signal after writing a checkpoint.
    #[error(
        "interrupted after iteration {iteration}; checkpoint written to {}\nresume with: \
         clrtrain train --resume {}",
        checkpoint.display(), output.display()
    )]
    Interrupted {
        iteration: u64,
        checkpoint: PathBuf,
        output: PathBuf,
    },
    /// The operating system refused something the run needs.
    #[error("{0}")]
    System(String),
    /// A model, optimiser or scheduler file could not be saved or loaded.
    #[error("model file {path}: {message}")]
    Model { path: PathBuf, message: String },
}

/// Result with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A data error about `path`.
    pub fn data(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Error::Data {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    /// An I/O error while doing `action` ("cannot read", "cannot write", ...) on `path`.
    pub fn io(action: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A model-file error about `path`.
    pub fn model(path: impl AsRef<Path>, message: impl ToString) -> Self {
        Error::Model {
            path: path.as_ref().to_path_buf(),
            message: message.to_string(),
        }
    }

    /// A plot that could not be drawn into `path`.
    pub fn plot(path: impl AsRef<Path>, message: impl ToString) -> Self {
        Error::Plot {
            path: path.as_ref().to_path_buf(),
            message: message.to_string(),
        }
    }

    /// `what` could not be encoded.
    pub fn encode(what: &'static str, message: impl ToString) -> Self {
        Error::Encode {
            what,
            message: message.to_string(),
        }
    }
}
