//! The one error type of the engine: categories a caller can act on.

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
    /// An earlier WAL or manifest write or sync failed; the database refuses writes until it
    /// is reopened. `reason` repeats the first failure.
    #[error("database poisoned by an earlier failure: {reason}")]
    Poisoned { reason: String },
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

    /// True for [`Error::Io`].
    pub fn is_io(&self) -> bool {
        matches!(self, Error::Io { .. })
    }

    /// A copy of this error, of the same variant with the same text (an `Io` error keeps its
    /// `ErrorKind` and message, not its OS error code), so that one failure can be reported
    /// to several callers: a background step's error to every write that waited for it.
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Io { context, source } => Error::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Corruption { what, location } => {
                Error::Corruption { what: what.clone(), location: location.clone() }
            }
            Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
            Error::Poisoned { reason } => Error::Poisoned { reason: reason.clone() },
            Error::Closed => Error::Closed,
            Error::NotFound(m) => Error::NotFound(m.clone()),
        }
    }
}
