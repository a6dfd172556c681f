//! Linking a local library to a team library, and the status that needs no network: the
//! glue `bpv sync link|unlink|--status` and the desktop app share, so both keep the same
//! rules (a re-link to the same place keeps the device id; a link that does not answer
//! is not kept; keys handed over go to the OS keychain when one works).

use bpv_engine::library::Library;
use bpv_engine::secrets::{Secrets, SecretsOptions};

use crate::config::{self, Credentials, LinkConfig};
use crate::error::{Result, SyncError};
use crate::remote::Remote;
use crate::sync::{self as syncer, SyncStatus, Syncer};

/// Where the team library is and how to reach it.
#[derive(Clone, Debug)]
pub struct LinkRequest {
    pub endpoints: Vec<String>,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    /// Path-style requests (Garage, MinIO); false for virtual-hosted (AWS S3).
    pub path_style: bool,
    /// Shown in conflict copies' names (default: the host name).
    pub device_name: Option<String>,
    pub interval_secs: u64,
}

/// Where the access keys come from.
#[derive(Clone, Debug)]
pub enum LinkKeys {
    /// The environment at every sync (`BPV_SYNC_ACCESS_KEY_ID`, …); nothing stored.
    Environment,
    /// An OS-keychain credential the user made (`bpv creds set NAME`, `ID:SECRET`).
    Credential(String),
    /// Given keys, kept in the library's private 0600 file.
    File(Credentials),
    /// Given keys, kept as an OS-keychain credential of this link; refused (with the
    /// ways out) when no credential store works here: never a silent plain file.
    Keychain(Credentials),
}

/// The keychain credential name a link made by [`LinkKeys::Keychain`] uses (removed again
/// by [`unlink_library`]; a credential the user named is never removed).
pub fn own_credential_name(device_id: &str) -> String {
    format!("team-sync-{device_id}")
}

/// Link `lib` (or re-link it to the same place with new endpoints/keys), store the keys,
/// and check the team library answers and accepts them. A new link that fails the check
/// is not kept (an earlier working one is).
pub fn link_library(lib: &Library, req: &LinkRequest, keys: LinkKeys) -> Result<LinkConfig> {
    let existing = config::load_link(lib.area())?;
    let is_new = existing.is_none();
    let mut link = match existing {
        // Re-linking keeps the device id (its log) when the place is the same.
        Some(old) if old.bucket == req.bucket && old.prefix == req.prefix.trim_matches('/') => {
            LinkConfig { endpoints: req.endpoints.clone(), ..old }
        }
        Some(_) => {
            return Err(SyncError::Config("already linked to another team library: unlink it first".into()));
        }
        None => LinkConfig::new(req.endpoints.clone(), &req.bucket, &req.prefix, req.device_name.clone())?,
    };
    check_endpoints(&link.endpoints)?;
    link.region = if req.region.trim().is_empty() { "us-east-1".into() } else { req.region.trim().to_owned() };
    link.path_style = req.path_style;
    link.interval_secs = req.interval_secs.max(1);
    let mut made_credential = None;
    link.credential = match keys {
        LinkKeys::Environment => None,
        LinkKeys::Credential(name) => Some(name),
        LinkKeys::File(creds) => {
            check_keys(&creds)?;
            config::save_credentials(lib.area(), &creds)?;
            None
        }
        LinkKeys::Keychain(creds) => {
            check_keys(&creds)?;
            let name = own_credential_name(&link.device_id);
            let value = format!("{}:{}", creds.access_key_id, creds.secret_access_key);
            // Never a silent fall back to a plain file: without a credential store the
            // link is refused with the ways out (the user may choose the file explicitly).
            Secrets::open(lib, &SecretsOptions::default())
                .and_then(|s| s.set_credential(&name, value.as_bytes()))
                .map_err(|e| {
                    SyncError::Config(format!(
                        "the team library's secret key was not stored: no credential store works here ({e}). \
                         Start the desktop keychain, or set {} for the passphrase file, or choose to keep the key \
                         in a file only you can read (`bpv sync link … --access-key-id ID`, the secret key on stdin)",
                        bpv_engine::secrets::FILE_PASSPHRASE_ENV
                    ))
                })?;
            made_credential = Some(name.clone());
            Some(name)
        }
    };
    let probe = || -> Result<()> {
        let creds = config::credentials_for(lib, &link)?;
        let remote = Remote::open(&link, &creds)?;
        Syncer::with_remote(lib, link.clone(), remote)?.probe()
    };
    if let Err(e) = probe() {
        if is_new {
            syncer::unlink(lib.area())?;
            if let Some(name) = made_credential {
                let _ = Secrets::open(lib, &SecretsOptions::default()).and_then(|s| s.delete_credential(&name));
            }
        }
        return Err(e);
    }
    Ok(link)
}

/// Forget the link and the sync state, and the keychain credential the link made for
/// itself (the files and the team library stay).
pub fn unlink_library(lib: &Library) -> Result<()> {
    if let Some(link) = config::load_link(lib.area())?
        && let Some(name) = &link.credential
        && *name == own_credential_name(&link.device_id)
    {
        Secrets::open(lib, &SecretsOptions::default())?.delete_credential(name)?;
    }
    syncer::unlink(lib.area())
}

/// The link's state and every blueprint that is not simply synced, without keys or
/// network; `linked: false` (and nothing else) when the library is not linked.
pub fn status_of(lib: &Library) -> Result<SyncStatus> {
    let Some(link) = config::load_link(lib.area())? else {
        return Ok(SyncStatus {
            linked: false,
            endpoints: Vec::new(),
            bucket: String::new(),
            prefix: String::new(),
            device_id: String::new(),
            device_name: String::new(),
            last_sync: None,
            last_error: None,
            state: "unlinked".into(),
            pending_changes: 0,
            synced: 0,
            items: Vec::new(),
            refused: Vec::new(),
            next_sync_in_secs: 0,
        });
    };
    Syncer::with_remote(lib, link, Remote::in_memory())?.status(lib)
}

/// Each endpoint is `http(s)://host[:port][/path]` (the S3 client panics on a malformed
/// authority, e.g. two addresses run together, instead of returning an error).
fn check_endpoints(endpoints: &[String]) -> Result<()> {
    if endpoints.is_empty() {
        return Err(SyncError::Config("give at least one endpoint, as http(s)://host:port".into()));
    }
    for e in endpoints {
        let rest = e.strip_prefix("http://").or_else(|| e.strip_prefix("https://"));
        if !rest.is_some_and(|rest| !rest.contains("://") && valid_authority(rest.split('/').next().unwrap_or(""))) {
            return Err(SyncError::Config(format!(
                "{e:?} is not an endpoint: give one per address, as http(s)://host:port"
            )));
        }
    }
    Ok(())
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, with a host of letters, digits, `.`, `-`, `_`.
fn valid_authority(authority: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, after)) => {
                return !addr.is_empty()
                    && addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
                    && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok));
            }
            None => return false,
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)) && port.is_none_or(port_ok)
}

fn check_keys(creds: &Credentials) -> Result<()> {
    if creds.access_key_id.trim().is_empty() || creds.secret_access_key.trim().is_empty() {
        return Err(SyncError::Config("give both the access key id and the secret access key".into()));
    }
    if creds.access_key_id.contains(':') {
        return Err(SyncError::Config("an access key id cannot contain `:`".into()));
    }
    Ok(())
}

/// Check a team library answers and the keys may list it, without linking anything
/// (the app's "Test connection"): few retries, so an unreachable store fails in seconds.
pub fn test_connection(req: &LinkRequest, creds: &Credentials) -> Result<()> {
    check_keys(creds)?;
    check_endpoints(&req.endpoints)?;
    let mut link = LinkConfig::new(req.endpoints.clone(), &req.bucket, &req.prefix, Some("test".into()))?;
    link.region = if req.region.trim().is_empty() { "us-east-1".into() } else { req.region.trim().to_owned() };
    link.path_style = req.path_style;
    let mut remote = Remote::open(&link, creds)?;
    remote.policy.attempts = 2;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| bpv_engine::Error::Io { context: "starting the sync runtime".into(), source: e })?;
    runtime.block_on(remote.list("logs")).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_before_the_s3_client_sees_them() {
        let ok = |e: &str| check_endpoints(&[e.to_owned()]).is_ok();
        for good in
            ["http://127.0.0.1:3900", "https://s3.eu-west-1.amazonaws.com", "http://node_1:3900/", "http://[::1]:3900"]
        {
            assert!(ok(good), "{good} refused");
        }
        // Two addresses run together (a form that lost its line break) once panicked inside
        // the S3 client; now a clear error, like every other malformed address.
        for bad in [
            "http://127.0.0.1:3900http://127.0.0.1:3903",
            "127.0.0.1:3900",
            "http://",
            "http://host:",
            "http://host:39a0",
            "http://ho st:3900",
            "http://[::1",
            "ftp://host",
        ] {
            let e = check_endpoints(&[bad.to_owned()]).unwrap_err();
            assert_eq!(e.code(), "invalid_argument", "{bad}");
        }
        assert!(check_endpoints(&[]).is_err());
        let req = LinkRequest {
            endpoints: vec!["http://127.0.0.1:1http://127.0.0.1:2".into()],
            bucket: "b".into(),
            prefix: String::new(),
            region: String::new(),
            path_style: true,
            device_name: None,
            interval_secs: 30,
        };
        let creds = Credentials { access_key_id: "k".into(), secret_access_key: "s".into() };
        assert_eq!(test_connection(&req, &creds).unwrap_err().code(), "invalid_argument");
    }
}
