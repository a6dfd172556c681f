//! Blueprint Vault's storage engine. No Tauri, no IPC: the desktop shell and the
//! `bpv` CLI are both thin layers over this crate. See ARCHITECTURE.md.

pub mod backup;
pub mod blueprint;
pub mod error;
#[cfg(feature = "fault-injection")]
pub mod fault;
pub mod fsio;
#[doc(hidden)]
pub mod fuzz;
pub mod index;
pub mod item;
pub mod key;
pub mod library;
pub mod paths;
pub mod process;
pub mod secrets;
pub mod store;
pub mod transfer;
pub mod watch;

pub use error::{Error, Result};
pub use item::Item;
pub use key::{Key, Namespace};
