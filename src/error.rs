//! The one error type of the library.
//!
//! Every variant says what went wrong and, where it can, what to do about it.
//! Bad bytes end in [`Error::DataCorruption`] or [`Error::VersionMismatch`];
//! bad user input ends in [`Error::Input`] (with file and line) or
//! [`Error::InvalidArgument`]. Nothing in the library panics on input.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// The outputs of a parallel map, or its first error in input order. (rayon's
/// own collect into a `Result` returns whichever error a thread met first,
/// which may change from run to run when a batch has several.)
#[cfg(feature = "store")]
pub(crate) fn first_error<T, E>(
    results: Vec<std::result::Result<T, E>>,
) -> std::result::Result<Vec<T>, E> {
    results.into_iter().collect()
}

/// Everything that can go wrong in adasid.
///
/// Input problems ([`Error::Input`], [`Error::BadFile`],
/// [`Error::InvalidArgument`], [`Error::UnknownKey`], …) are the caller's to
/// fix; [`Error::Store`], [`Error::Metadata`], [`Error::Model`] and
/// [`Error::Io`] are failures underneath and keep their source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line of an input file is malformed or does not fit the database.
    #[error("{file}:{line}: {message}")]
    Input {
        /// The file as the user named it.
        file: String,
        /// 1-based line (or row) number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },

    /// A whole input file is unusable (wrong shape, dtype, layout, row count).
    #[error("{file}: {message}")]
    BadFile {
        /// The file as the user named it.
        file: String,
        /// What is wrong with it and what to do.
        message: String,
    },

    /// An argument or API input is out of range or malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// An item key the caller named is not in the database.
    #[error("unknown item key '{0}'")]
    UnknownKey(String),

    /// Stored bytes fail their checksum or do not decode.
    #[error("data corruption in {what}: {detail}")]
    DataCorruption {
        /// Which object was being read.
        what: String,
        /// What check failed.
        detail: String,
    },

    /// Stored bytes were written by a different (usually newer) format version.
    #[error(
        "{what} has format version {found}, this build reads version {supported}; \
         use the adasid release that wrote it or rebuild the database"
    )]
    VersionMismatch {
        /// Which object was being read.
        what: String,
        /// Version found in the bytes.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },

    /// No database exists at the given path.
    #[error("no adasid database at {}", path.display())]
    NotFound {
        /// The path that was opened.
        path: PathBuf,
    },

    /// A database already exists where a new one was to be created.
    #[error("an adasid database already exists at {}", path.display())]
    AlreadyExists {
        /// The path that was created.
        path: PathBuf,
    },

    /// Another process holds the database open.
    #[error(
        "database at {} is open in another process; stop that process or open another database",
        path.display()
    )]
    Locked {
        /// The locked database path.
        path: PathBuf,
    },

    /// Another process is changing the database and this read cannot be
    /// answered consistently at this moment; a retry shortly after succeeds.
    #[error("database at {} is busy: {reason}; retry in a moment", path.display())]
    Busy {
        /// The database path.
        path: PathBuf,
        /// What is under way.
        reason: String,
    },

    /// This process may not write the database folder, the store writes on
    /// every open (recovery), reads included, and there is no current
    /// published view to read instead.
    #[error(
        "database at {} is not writable by this user, it has no current published view to read, \
         and opening its store writes to it even to read; its owner can publish one by running any \
         command on it (e.g. `adasid stats --db {}`), or write a snapshot (`adasid snapshot --db {} --out FILE`) \
         to read with `--snapshot FILE`",
        path.display(),
        path.display(),
        path.display()
    )]
    ReadOnly {
        /// The database path.
        path: PathBuf,
    },

    /// More items share one semantic ID than the disambiguation token can count.
    #[error(
        "{count} items share the SID {sid}; one semantic ID holds at most {limit} items \
         (use longer SIDs or a larger codebook)"
    )]
    TooManyCollisions {
        /// The shared semantic tokens, comma separated.
        sid: String,
        /// Items that would share it.
        count: usize,
        /// Items one semantic ID can hold ([`crate::sid::MAX_DISAMBIGUATION`]).
        limit: u32,
    },

    /// The underlying key-value store failed.
    #[cfg(feature = "store")]
    #[error("store error: {0}")]
    Store(#[source] sled::Error),

    /// The tantivy metadata index failed.
    #[cfg(feature = "filters")]
    #[error("metadata index: {0}")]
    Metadata(#[source] tantivy::TantivyError),

    /// A tensor operation of a model failed.
    #[cfg(feature = "train")]
    #[error("model: {0}")]
    Model(#[source] candle_core::Error),

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The variant's name (`"UnknownKey"`, `"Store"`, …), for a program that
    /// reports errors as data (the CLI's `--json` errors).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Input { .. } => "Input",
            Error::BadFile { .. } => "BadFile",
            Error::InvalidArgument(_) => "InvalidArgument",
            Error::UnknownKey(_) => "UnknownKey",
            Error::DataCorruption { .. } => "DataCorruption",
            Error::VersionMismatch { .. } => "VersionMismatch",
            Error::NotFound { .. } => "NotFound",
            Error::AlreadyExists { .. } => "AlreadyExists",
            Error::Locked { .. } => "Locked",
            Error::Busy { .. } => "Busy",
            Error::ReadOnly { .. } => "ReadOnly",
            Error::TooManyCollisions { .. } => "TooManyCollisions",
            #[cfg(feature = "store")]
            Error::Store(_) => "Store",
            #[cfg(feature = "filters")]
            Error::Metadata(_) => "Metadata",
            #[cfg(feature = "train")]
            Error::Model(_) => "Model",
            Error::Io { .. } => "Io",
        }
    }

    /// Whether the caller can fix this (bad input, a missing or existing
    /// database, a lock held elsewhere, a retry) rather than a failure underneath.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Error::Input { .. }
                | Error::BadFile { .. }
                | Error::InvalidArgument(_)
                | Error::UnknownKey(_)
                | Error::NotFound { .. }
                | Error::AlreadyExists { .. }
                | Error::Locked { .. }
                | Error::Busy { .. }
                | Error::ReadOnly { .. }
                | Error::TooManyCollisions { .. }
        )
    }
    pub(crate) fn corruption(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::DataCorruption {
            what: what.into(),
            detail: detail.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_the_variant_and_input_splits_caller_from_failure() {
        let bad = Error::InvalidArgument("x".into());
        assert_eq!((bad.kind(), bad.is_input()), ("InvalidArgument", true));
        let corrupt = Error::corruption("chunk 3", "bad checksum");
        assert_eq!(
            (corrupt.kind(), corrupt.is_input()),
            ("DataCorruption", false)
        );
        let io = Error::io("f", std::io::Error::other("disk"));
        assert_eq!((io.kind(), io.is_input()), ("Io", false));
    }
}
