//! `bpv creds …` (named secrets in the OS keychain) and `bpv keys …` (the master key of
//! encrypted blueprints: status, recovery kit, recover, rotate, audit log).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bpv_engine::library::Library;
use bpv_engine::secrets::{KeyStatus, RotateOptions, Secrets, SecretsOptions, StoreKind};
use bpv_engine::{Error, Result};
use clap::Subcommand;
use serde_json::json;

/// The recovery passphrase for scripts (else it is read from standard input).
pub const RECOVERY_PASSPHRASE_ENV: &str = "BPV_RECOVERY_PASSPHRASE";

#[derive(Subcommand)]
pub enum CredsAction {
    /// Credential names, metadata and the blueprints using them (never values).
    List,
    /// Store a credential; the value is read from standard input (one trailing newline dropped).
    Set { name: String },
    /// A credential's metadata; with --reveal its value (recorded in the audit log).
    Get {
        name: String,
        #[arg(long)]
        reveal: bool,
    },
    /// Delete a credential from the store.
    Delete { name: String },
}

#[derive(Subcommand)]
pub enum KeysAction {
    /// Which store holds the key and whether it opens this library's data.
    Status,
    /// Write the master key, locked with a recovery passphrase, as a printable page
    /// (passphrase: $BPV_RECOVERY_PASSPHRASE, else the first line of standard input).
    RecoveryKit {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Restore the master key from a recovery kit (passphrase as for recovery-kit).
    Recover { kit: PathBuf },
    /// Re-encrypt every encrypted blueprint under a new master key, all or nothing.
    Rotate,
    /// The audit log of sensitive operations.
    Audit,
}

fn io_err(context: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io { context: context.to_owned(), source: e }
}

pub fn store_kind(store: Option<&str>) -> Result<SecretsOptions> {
    Ok(SecretsOptions { store: store.map(StoreKind::parse).transpose()? })
}

fn print_line(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(io_err("cannot write output"))
}

fn print_json(v: &serde_json::Value) -> Result<()> {
    print_line(&v.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::Corrupt(e.to_string()))
}

fn read_stdin() -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).map_err(io_err("cannot read stdin"))?;
    Ok(buf)
}

/// One trailing newline (`echo`, a here-string) is not part of a secret.
fn strip_newline(mut v: Vec<u8>) -> Vec<u8> {
    if v.ends_with(b"\n") {
        v.pop();
        if v.ends_with(b"\r") {
            v.pop();
        }
    }
    v
}

fn recovery_passphrase() -> Result<Vec<u8>> {
    if let Some(p) = std::env::var_os(RECOVERY_PASSPHRASE_ENV).filter(|p| !p.is_empty()) {
        return Ok(p.as_encoded_bytes().to_vec());
    }
    let all = read_stdin()?;
    let line = all.split(|b| *b == b'\n').next().unwrap_or_default();
    Ok(strip_newline(line.to_vec()))
}

pub fn creds(lib: &Library, action: &CredsAction, opts: &SecretsOptions, json: bool) -> Result<()> {
    let secrets = Secrets::open(lib, opts)?;
    match action {
        CredsAction::List => {
            let list = secrets.list_credentials(lib)?;
            if json {
                return print_json(&to_json(&list)?);
            }
            print_line(&format!(
                "Store: {} — {} ({})",
                list.store.store.name(),
                list.store.description,
                list.store.reason
            ))?;
            if list.credentials.is_empty() {
                print_line("No credentials. Add one with `bpv creds set NAME` (value on standard input).")?;
            }
            for c in &list.credentials {
                let used =
                    if c.used_by.is_empty() { String::new() } else { format!("  used by {}", c.used_by.join(", ")) };
                let missing = if c.present { "" } else { "  (value missing from the store!)" };
                let last = c
                    .last_used
                    .as_deref()
                    .map(|t| format!("  last used {}", &t[..10.min(t.len())]))
                    .unwrap_or_default();
                print_line(&format!("  {:<24}{last}{used}{missing}", c.name))?;
            }
            for m in &list.missing {
                print_line(&format!("! {:<24}  referenced by {} but not set", m.name, m.used_by.join(", ")))?;
            }
            Ok(())
        }
        CredsAction::Set { name } => {
            let value = strip_newline(read_stdin()?);
            secrets.set_credential(name, &value)?;
            let info = secrets.credential(lib, name)?;
            if json {
                return print_json(&json!({ "credential": info, "store": secrets.choice() }));
            }
            print_line(&format!("Stored {name} in {}", secrets.choice().store.name()))
        }
        CredsAction::Get { name, reveal } => {
            if *reveal {
                let value = secrets.credential_value(name, true)?;
                if json {
                    let text = String::from_utf8_lossy(&value).into_owned();
                    return print_json(&json!({ "name": name, "value": text }));
                }
                let mut out = std::io::stdout().lock();
                out.write_all(&value).and_then(|()| out.write_all(b"\n")).map_err(io_err("cannot write output"))
            } else {
                let info = secrets.credential(lib, name)?;
                if json {
                    return print_json(&to_json(&info)?);
                }
                print_line(&format!(
                    "{}  created {}  updated {}  last used {}  used by [{}]{}\n(value hidden: --reveal to show it)",
                    info.name,
                    info.created,
                    info.updated,
                    info.last_used.as_deref().unwrap_or("never"),
                    info.used_by.join(", "),
                    if info.present { "" } else { "  VALUE MISSING FROM THE STORE" }
                ))
            }
        }
        CredsAction::Delete { name } => {
            secrets.delete_credential(name)?;
            if json {
                return print_json(&json!({ "deleted": name }));
            }
            print_line(&format!("Deleted {name}"))
        }
    }
}

pub fn keys(lib: &Library, action: &KeysAction, opts: &SecretsOptions, json: bool) -> Result<()> {
    let secrets = Secrets::open(lib, opts)?;
    match action {
        KeysAction::Status => {
            let status = secrets.key_status(lib);
            let choice = secrets.choice_with_holdings(lib);
            if json {
                return print_json(&json!({ "store": choice, "key": status }));
            }
            print_line(&format!("{}\nHolds:     {}", keychain_text(&choice, &status), choice.holds))
        }
        KeysAction::RecoveryKit { out } => {
            let pass = recovery_passphrase()?;
            let kit = secrets.recovery_kit(lib, &pass)?;
            write_private(out, kit.printable_page()?.as_bytes())?;
            if json {
                return print_json(&json!({ "key_id": kit.key_id, "out": out }));
            }
            print_line(&format!(
                "Recovery kit for key {} written to {}: print it or keep it offline, apart from the passphrase.",
                kit.key_id,
                out.display()
            ))
        }
        KeysAction::Recover { kit } => {
            let text = std::fs::read_to_string(kit).map_err(|e| Error::io("cannot read", kit, e))?;
            let pass = recovery_passphrase()?;
            let report = secrets.recover(lib, &text, &pass)?;
            if json {
                return print_json(&to_json(&report)?);
            }
            let mut msg = format!(
                "Key {} restored to {}; {} encrypted blueprints open with it.",
                report.key_id,
                secrets.choice().store.name(),
                report.readable
            );
            if !report.unreadable.is_empty() {
                msg.push_str(&format!("\nSealed with another key: {}", report.unreadable.join(", ")));
            }
            print_line(&msg)
        }
        KeysAction::Rotate => {
            let report = secrets.rotate(lib, &RotateOptions::default())?;
            if json {
                return print_json(&to_json(&report)?);
            }
            print_line(&format!(
                "Rotated key {} → {}: {} blueprints re-encrypted in {} ms. Make a new recovery kit now.",
                report.old_key_id, report.new_key_id, report.reencrypted, report.millis
            ))
        }
        KeysAction::Audit => {
            let entries = secrets.audit_log()?;
            if json {
                return print_json(&to_json(&entries)?);
            }
            for e in entries {
                let what =
                    [e.name.as_deref(), e.detail.as_deref()].into_iter().flatten().collect::<Vec<_>>().join("  ");
                print_line(&format!("{}  {:<22} {}  ({}, pid {})", e.time, e.action, what, e.store, e.pid))?;
            }
            Ok(())
        }
    }
}

/// The kit is only useful with its passphrase, but it is still not for other users' eyes.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("cannot create", path, e))?;
    // `mode` applies only to a new file: an existing one is narrowed before the write.
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| Error::io("cannot make owner-only", path, e))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| Error::io("cannot write", path, e))
}

fn keychain_text(choice: &bpv_engine::secrets::StoreChoice, status: &KeyStatus) -> String {
    let key = match status.state.as_str() {
        "none" => "no master key yet (nothing encrypted)".to_owned(),
        "ok" => {
            format!("key {} ok ({} encrypted)", status.key_id.as_deref().unwrap_or("?"), status.encrypted_blueprints)
        }
        _ => format!("{}: {}", status.state.to_uppercase(), status.message),
    };
    format!("Keychain:  {} — {} ({})\nKey:       {key}", choice.store.name(), choice.description, choice.reason)
}

/// The `keychain` part of `bpv info`: never fails (an unusable store is reported, with why).
pub fn info_keychain(lib: &Library, opts: &SecretsOptions) -> (serde_json::Value, String) {
    match Secrets::open(lib, opts) {
        Ok(secrets) => {
            let status = secrets.key_status(lib);
            let text = keychain_text(secrets.choice(), &status);
            let mut v = serde_json::to_value(secrets.choice()).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("key".into(), serde_json::to_value(&status).unwrap_or_default());
            }
            (v, text)
        }
        Err(e) => (
            json!({ "store": null, "reason": e.to_string(), "code": e.code() }),
            format!("Keychain:  unavailable — {e}"),
        ),
    }
}

/// `bpv show` of an encrypted blueprint: decrypted in memory, straight to stdout.
pub fn show_plain(lib: &Library, path: &str, opts: &SecretsOptions) -> Result<()> {
    let secrets = Secrets::open(lib, opts)?;
    let plain = secrets.read_plain(lib, path)?;
    std::io::stdout().write_all(&plain).map_err(io_err("cannot write to stdout"))
}
