//! The engine's one error type. Every variant maps to a stable machine-readable
//! `code()` so the CLI (`--json`) and the desktop shell can report errors without
//! matching on message strings.

use std::io;
use std::path::Path;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("corrupt: {0}")]
    Corrupt(String),
    #[error("invalid blueprint: {0}")]
    InvalidBlueprint(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("not supported by this store: {0}")]
    Unsupported(String),
    #[error("index: {0}")]
    Index(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("cancelled")]
    Cancelled,
    /// Sealed data and the key at hand do not match (or a passphrase is wrong).
    #[error("wrong key: {0}")]
    WrongKey(String),
    /// The master key is not in the credential store; the message says the way out.
    #[error("key missing: {0}")]
    KeyMissing(String),
    /// The credential store (Secret Service, keyutils, the passphrase file) failed or is unreachable.
    #[error("keychain: {0}")]
    Keychain(String),
}

impl Error {
    /// Stable code for scripts and the UI. Never change an existing code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "not_found",
            Error::AlreadyExists(_) => "already_exists",
            Error::InvalidKey { .. } => "invalid_key",
            Error::QuotaExceeded(_) => "quota_exceeded",
            Error::Conflict(_) => "conflict",
            Error::Corrupt(_) => "corrupt",
            Error::InvalidBlueprint(_) => "invalid_blueprint",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::Unsupported(_) => "unsupported",
            Error::Index(_) => "index",
            Error::Io { source, .. } if is_disk_full(source) => "disk_full",
            Error::Io { .. } => "io",
            Error::Cancelled => "cancelled",
            Error::WrongKey(_) => "wrong_key",
            Error::KeyMissing(_) => "key_missing",
            Error::Keychain(_) => "keychain",
        }
    }

    pub fn invalid_key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidKey { key: key.into(), reason: reason.into() }
    }

    /// Wrap an I/O error with what we were doing and to which path.
    pub fn io(what: &str, path: &Path, source: io::Error) -> Self {
        let context = if is_disk_full(&source) {
            format!("{what} {} (the disk is full: free some space and try again)", path.display())
        } else {
            format!("{what} {}", path.display())
        };
        Error::Io { context, source }
    }
}

fn is_disk_full(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT)
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Index(e.to_string())
    }
}

impl From<r2d2::Error> for Error {
    fn from(e: r2d2::Error) -> Self {
        Error::Index(format!("connection pool: {e}"))
    }
}
