//! Blueprint Vault team libraries: a local library synced through S3-compatible
//! object storage (Garage, MinIO, Ceph, AWS S3, R2) with a protocol that needs no
//! compare-and-swap. See `model` for the merge, `sync` for one sync, ARCHITECTURE.md
//! ("Team libraries") for the layout in the bucket and the invariants.

pub mod config;
pub mod error;
pub mod gc;
pub mod link;
pub mod migrate;
pub mod model;
pub mod remote;
pub mod state;
pub mod store;
pub mod sync;
pub mod validate;

pub use config::{Credentials, LinkConfig};
pub use error::{Result, SyncError};
pub use remote::{Remote, RetryPolicy};
pub use sync::{ItemSync, SyncReport, SyncStatus, Syncer};
pub use validate::Refused;
