//! The one error type of the engine: categories a caller can act on.

use crate::sync::Arc;
use std::fmt;

/// Every fallible engine call returns this.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The filesystem failed. `context` names the operation and the path.
    #[error("io error during {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Stored bytes are not what the engine wrote: `what` is wrong, found at `location`
    /// (a file name and an offset, usually).
    #[error("corruption: {what} (at {location})")]
    Corruption { what: String, location: String },
    /// The caller passed something the engine refuses (a bad bound, an option out of range).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An earlier WAL or manifest write or sync failed (or a background step panicked); the
    /// database refuses writes until [`crate::Db::resume`] succeeds or it is reopened. `cause`
    /// is (a copy of) the first failure.
    #[error("database poisoned by an earlier failure: {cause}")]
    Poisoned {
        #[source]
        cause: Arc<Error>,
    },
    /// Code the engine called (a user's merge operator, comparator or `Fs`, or the engine
    /// itself) panicked; `message` is the panic's payload. The database is poisoned and only a
    /// reopen clears it.
    #[error("panic: {message}")]
    Panicked { message: String },
    /// The database (or the object) was closed.
    #[error("database closed")]
    Closed,
    /// A file or a database that was asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Io`] with context.
    pub fn io(context: impl fmt::Display, source: std::io::Error) -> Error {
        Error::Io { context: context.to_string(), source }
    }

    /// Builds an [`Error::Corruption`].
    pub fn corruption(what: impl fmt::Display, location: impl fmt::Display) -> Error {
        Error::Corruption { what: what.to_string(), location: location.to_string() }
    }

    /// True for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }

    /// An error of the same kind and message, for the places that keep a failure while also
    /// returning it (`std::io::Error` is not `Clone`).
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Io { context, source } => Error::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Corruption { what, location } => {
                Error::Corruption { what: what.clone(), location: location.clone() }
            }
            Error::InvalidArgument(what) => Error::InvalidArgument(what.clone()),
            Error::Poisoned { cause } => Error::Poisoned { cause: cause.clone() },
            Error::Panicked { message } => Error::Panicked { message: message.clone() },
            Error::Closed => Error::Closed,
            Error::NotFound(what) => Error::NotFound(what.clone()),
        }
    }

    /// Builds an [`Error::Panicked`] from a panic payload (`&str` or `String`, else a
    /// placeholder).
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Error {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with a non-string payload".to_string());
        Error::Panicked { message }
    }

    /// True for [`Error::Poisoned`].
    pub fn is_poisoned(&self) -> bool {
        matches!(self, Error::Poisoned { .. })
    }

    /// True for [`Error::Io`].
    pub fn is_io(&self) -> bool {
        matches!(self, Error::Io { .. })
    }
}
