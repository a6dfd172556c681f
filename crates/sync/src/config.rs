//! The link between a local library and a team library, kept in the library's private
//! area (`<area>/sync/`): `link.json` (endpoint(s), bucket, prefix, region, path
//! style, this device's id and name) and the access keys.
//!
//! Access keys, first found: `BPV_SYNC_ACCESS_KEY_ID` / `BPV_SYNC_SECRET_ACCESS_KEY` (then
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`); the OS keychain credential named in
//! `link.credential` (`bpv creds set NAME`, value `ACCESS_KEY_ID:SECRET`); else
//! `<area>/sync/credentials.json`, written with mode 0600 and refused when group or others
//! can read it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bpv_engine::fsio;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SyncError};

pub const SYNC_DIR: &str = "sync";
const LINK_FILE: &str = "link.json";
const CREDENTIALS_FILE: &str = "credentials.json";

/// Where and how to reach the team library.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkConfig {
    /// S3 endpoints, tried in turn (several nodes of one cluster: one down is no outage).
    pub endpoints: Vec<String>,
    pub bucket: String,
    /// Key prefix inside the bucket (several team libraries can share a bucket).
    #[serde(default)]
    pub prefix: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style requests (`endpoint/bucket/key`): what Garage and MinIO expect.
    #[serde(default = "yes")]
    pub path_style: bool,
    /// This device's id: names its log (`logs/<device>/…`), unique per linked library.
    pub device_id: String,
    /// Shown in conflict copies' names.
    pub device_name: String,
    /// Seconds between periodic syncs while the app runs.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// A credential in the OS keychain (`bpv creds set NAME`) holding `ACCESS_KEY_ID:SECRET`;
    /// when set, the keys come from there instead of the 0600 file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

fn default_region() -> String {
    "us-east-1".into()
}
fn yes() -> bool {
    true
}
fn default_interval() -> u64 {
    30
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ access_key_id: {:?}, secret_access_key: <hidden> }}", self.access_key_id)
    }
}

impl LinkConfig {
    /// A new link with a fresh device id; `device_name` defaults to the host name.
    pub fn new(endpoints: Vec<String>, bucket: &str, prefix: &str, device_name: Option<String>) -> Result<LinkConfig> {
        if endpoints.is_empty() || endpoints.iter().any(|e| !(e.starts_with("http://") || e.starts_with("https://"))) {
            return Err(SyncError::Config("give at least one endpoint, as http(s)://host:port".into()));
        }
        if bucket.is_empty() || bucket.contains('/') {
            return Err(SyncError::Config(format!("{bucket:?} is not a bucket name")));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|s| s == "." || s == "..") {
            return Err(SyncError::Config(format!("{prefix:?} is not a usable prefix")));
        }
        let device_name = match device_name {
            // Other devices refuse changes whose device name could not be part of a file name.
            Some(name) => {
                crate::validate::device_name(&name)
                    .map_err(|e| SyncError::Config(format!("{e}: choose another device name")))?;
                name
            }
            None => usable_name(&host_name()),
        };
        Ok(LinkConfig {
            endpoints,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            region: default_region(),
            path_style: true,
            device_id: format!("{:016x}", rand::random::<u64>()),
            device_name,
            interval_secs: default_interval(),
            credential: None,
        })
    }
}

pub fn sync_dir(area: &Path) -> PathBuf {
    area.join(SYNC_DIR)
}

pub fn load_link(area: &Path) -> Result<Option<LinkConfig>> {
    let path = sync_dir(area).join(LINK_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SyncError::Config(format!("{}: {e} (re-link the library)", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(bpv_engine::Error::io("cannot read", &path, e).into()),
    }
}

pub fn save_link(area: &Path, link: &LinkConfig) -> Result<()> {
    let body = serde_json::to_vec_pretty(link).map_err(|e| SyncError::Config(e.to_string()))?;
    fsio::write_atomic(&sync_dir(area).join(LINK_FILE), &body)?;
    Ok(())
}

/// Keys from the environment, else from the 0600 file.
pub fn load_credentials(area: &Path) -> Result<Credentials> {
    let env = |a: &str, b: &str| std::env::var(a).ok().or_else(|| std::env::var(b).ok()).filter(|v| !v.is_empty());
    if let (Some(id), Some(secret)) =
        (env("BPV_SYNC_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"), env("BPV_SYNC_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"))
    {
        return Ok(Credentials { access_key_id: id, secret_access_key: secret });
    }
    let path = sync_dir(area).join(CREDENTIALS_FILE);
    let meta = fs::metadata(&path).map_err(|_| {
        SyncError::Config(
            "no access keys: set BPV_SYNC_ACCESS_KEY_ID and BPV_SYNC_SECRET_ACCESS_KEY, or link with --access-key-id"
                .into(),
        )
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(SyncError::Config(format!(
            "{} can be read by other users: run `chmod 600` on it (or link again)",
            path.display()
        )));
    }
    let bytes = fs::read(&path).map_err(|e| bpv_engine::Error::io("cannot read", &path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| SyncError::Config(format!("{}: {e}", path.display())))
}

/// Write the keys readable by the owner only (temp file created 0600, then renamed).
pub fn save_credentials(area: &Path, creds: &Credentials) -> Result<()> {
    let dir = sync_dir(area);
    fsio::ensure_dir(&dir)?;
    let target = dir.join(CREDENTIALS_FILE);
    let temp = dir.join(format!(".{CREDENTIALS_FILE}.bpv-tmp-{}", std::process::id()));
    let body = serde_json::to_vec(creds).map_err(|e| SyncError::Config(e.to_string()))?;
    let write = || -> std::io::Result<()> {
        let _ = fs::remove_file(&temp);
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        fs::rename(&temp, &target)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&temp);
        bpv_engine::Error::io("cannot write", &target, e)
    })?;
    fsio::fsync_dir(&dir)?;
    Ok(())
}

/// A host name as a device name other devices accept (see `validate::device_name`).
fn usable_name(name: &str) -> String {
    let name: String = name
        .replace("..", "-")
        .chars()
        .map(|c| if c == '/' || c == '\\' || c.is_control() { '-' } else { c })
        .take(crate::validate::MAX_DEVICE_NAME_CHARS)
        .collect();
    if crate::validate::device_name(&name).is_ok() { name } else { "this device".into() }
}

fn host_name() -> String {
    fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "this device".into())
}

/// Keys for a link: the environment, else the keychain credential it names, else the file.
pub fn credentials_for(lib: &bpv_engine::library::Library, link: &LinkConfig) -> Result<Credentials> {
    let env = |a: &str, b: &str| std::env::var(a).ok().or_else(|| std::env::var(b).ok()).filter(|v| !v.is_empty());
    if env("BPV_SYNC_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID").is_some() {
        return load_credentials(lib.area());
    }
    let Some(name) = &link.credential else { return load_credentials(lib.area()) };
    let secrets = bpv_engine::secrets::Secrets::open(lib, &bpv_engine::secrets::SecretsOptions::default())?;
    let value = secrets.credential_value(name, false)?;
    let text = std::str::from_utf8(&value)
        .map_err(|_| SyncError::Config(format!("credential {name} is not text: store it as ACCESS_KEY_ID:SECRET")))?;
    let (id, secret) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| SyncError::Config(format!("credential {name} must be ACCESS_KEY_ID:SECRET")))?;
    Ok(Credentials { access_key_id: id.to_owned(), secret_access_key: secret.to_owned() })
}
