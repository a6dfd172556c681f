//! Sync errors. Engine errors pass through with their own codes; the remote store's
//! failures get codes of their own so the CLI (`--json`) and the app can say what to do.

pub type Result<T, E = SyncError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Engine(#[from] bpv_engine::Error),
    /// The store could not be reached or kept failing after every retry.
    #[error("team library unreachable: {0} (changes stay queued and are sent at the next sync)")]
    Unreachable(String),
    /// The store refused the credentials or the bucket.
    #[error("team library refused access: {0} (check the access key, its bucket permissions and the bucket name)")]
    Denied(String),
    /// Something in the team library cannot be read as the protocol expects.
    #[error("team library data is damaged: {0}")]
    Remote(String),
    #[error("this library is not linked to a team library (run `bpv sync link …` first)")]
    NotLinked,
    #[error("sync configuration: {0}")]
    Config(String),
    /// A migration's final check found a difference.
    #[error("verification failed: {0}")]
    Verify(String),
}

impl SyncError {
    /// Stable machine-readable code; never change an existing one.
    pub fn code(&self) -> &'static str {
        match self {
            SyncError::Engine(e) => e.code(),
            SyncError::Unreachable(_) => "remote_unreachable",
            SyncError::Denied(_) => "remote_denied",
            SyncError::Remote(_) => "remote_corrupt",
            SyncError::NotLinked => "not_linked",
            SyncError::Config(_) => "invalid_argument",
            SyncError::Verify(_) => "verify_failed",
        }
    }
}
