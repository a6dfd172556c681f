//! Keys survive a reboot (issue 21, part 4). A machine without a Secret Service (no
//! `DBUS_SESSION_BUS_ADDRESS`), with the kernel's keyutils: every `bpv` below runs in its
//! own NEW session keyring (`keyctl session -`), which is what a logout or a reboot gives
//! the next run. Needs `keyctl` (package keyutils): without it these tests FAIL.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bpv_engine::library::{BlueprintSave, Library, OpenOptions};
use bpv_engine::secrets::{KeyringStore, Secrets, StoreKind};
use serde_json::Value;

const PASSPHRASE: &str = "file store passphrase for tests";
const YAML: &str = "name: Reboot check\nnodes:\n  - id: mail\n    type: email.send\n    parameters:\n      token: ${secret:mailgun}\n      body: reboot-secret-wording-51c2\n";

struct Env {
    tmp: tempfile::TempDir,
    library: PathBuf,
    data: PathBuf,
}

fn keyctl_present() {
    let ok = Command::new("keyctl").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "keyctl (package keyutils) is needed: these tests simulate a reboot with `keyctl session -`");
}

impl Env {
    fn new() -> Env {
        keyctl_present();
        let tmp = tempfile::tempdir().unwrap();
        Env { library: tmp.path().join("lib"), data: tmp.path().join("data"), tmp }
    }

    /// `bpv ARGS` in a fresh session keyring ("after a reboot"), without a Secret Service
    /// and without naming a store: the automatic chain decides.
    fn after_reboot(&self, args: &[&str], stdin: &[u8], passphrase: bool) -> Output {
        let mut c = Command::new("keyctl");
        c.args(["session", "-", env!("CARGO_BIN_EXE_bpv")]);
        self.args(&mut c, args, passphrase);
        run(c, stdin)
    }

    /// `bpv ARGS` in this test process's own session keyring.
    fn same_session(&self, args: &[&str], stdin: &[u8], passphrase: bool) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bpv"));
        self.args(&mut c, args, passphrase);
        run(c, stdin)
    }

    fn args(&self, c: &mut Command, args: &[&str], passphrase: bool) {
        c.arg("--library").arg(&self.library).arg("--data-dir").arg(&self.data).args(args);
        c.env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("BPV_CREDENTIAL_STORE")
            .env_remove("BPV_RECOVERY_PASSPHRASE");
        if passphrase {
            c.env("BPV_CREDENTIALS_PASSPHRASE", PASSPHRASE);
        } else {
            c.env_remove("BPV_CREDENTIALS_PASSPHRASE");
        }
    }

    fn lib(&self) -> Library {
        let mut o = OpenOptions::new(&self.library);
        o.data_dir = Some(self.data.clone());
        Library::open(o).unwrap()
    }
}

fn run(mut c: Command, stdin: &[u8]) -> Output {
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "bpv {what} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out.stdout
}

/// Run `body` inside a fresh session keyring: the test runs itself again there (its
/// `bpv` children share that keyring, as one login session does).
fn in_session(test: &str, body: fn()) {
    if std::env::var_os("BPV_REBOOT_TEST_INNER").is_some() {
        body();
    } else {
        keyctl_present();
        let out = Command::new("keyctl")
            .args(["session", "-", "env", "BPV_REBOOT_TEST_INNER=1"])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture"])
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("1 passed"), "inside a session keyring:\n{text}");
    }
}

/// What a reboot does to keyutils, for this library only: its entries are gone. (A new
/// session keyring alone is not enough: keyring-core's keyutils store also links what it
/// keeps into the user's persistent keyring, which a new session still finds; clearing
/// that would disturb every other user of this machine's keyrings.)
fn forget_keyutils(env: &Env) {
    use bpv_engine::secrets::CredentialStore;
    let lib = env.lib();
    let service = format!("blueprint-vault/{}", lib.area().file_name().unwrap().to_string_lossy());
    let store = KeyringStore::connect(StoreKind::Keyutils).expect("keyutils must work here");
    for name in ["master-key", "cred/mailgun"] {
        store.delete(&service, name).unwrap();
    }
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

const REL: &str = "Blueprints/personal/check.blueprint.yaml";

/// Every encrypted blueprint readable (with the passphrase) and every credential present,
/// in a new session after the one that stored them.
fn check_after_reboot(env: &Env) {
    forget_keyutils(env);
    let shown = ok(env.after_reboot(&["show", REL], b"", true), "show after a reboot");
    assert_eq!(shown, YAML.as_bytes());
    let got = ok(env.after_reboot(&["creds", "get", "mailgun", "--reveal"], b"", true), "creds get after a reboot");
    assert_eq!(got, b"key-abc-123\n");
    // Without the passphrase it is asked for (the way out), not reported lost.
    let locked = env.after_reboot(&["show", REL], b"", false);
    assert!(!locked.status.success());
    let err = String::from_utf8_lossy(&locked.stderr);
    assert!(err.contains("BPV_CREDENTIALS_PASSPHRASE"), "{err}");
}

#[test]
fn without_a_secret_service_secrets_go_to_the_passphrase_file_and_survive_a_reboot() {
    in_session("without_a_secret_service_secrets_go_to_the_passphrase_file_and_survive_a_reboot", new_library);
}

fn new_library() {
    let env = Env::new();
    ok(env.after_reboot(&["init"], b"", true), "init");
    ok(env.after_reboot(&["creds", "set", "mailgun"], b"key-abc-123\n", true), "creds set");
    ok(env.after_reboot(&["save", "Blueprints/personal/check", "--encrypt"], YAML.as_bytes(), true), "save --encrypt");
    check_after_reboot(&env);

    // `bpv keys status` says which store holds what, and why.
    let status: Value =
        serde_json::from_slice(&ok(env.after_reboot(&["--json", "keys", "status"], b"", true), "keys status")).unwrap();
    assert_eq!(status["store"]["store"], "file", "{status}");
    assert!(status["store"]["description"].as_str().unwrap().contains("passphrase"), "{status}");
    let holds = status["store"]["holds"].as_str().unwrap();
    assert!(
        holds.contains("the master key") && holds.contains("1 credential") && holds.contains("kept across"),
        "{holds}"
    );
    let text = String::from_utf8(ok(env.after_reboot(&["keys", "status"], b"", true), "keys status")).unwrap();
    assert!(text.contains("Holds:") && text.contains("the master key"), "{text}");

    // Files that hold secrets, even sealed, are owner-only.
    let secrets = Secrets::credential_file(&env.lib()).parent().unwrap().to_path_buf();
    for f in ["credentials.sealed", "canary.sealed", "registry.json"] {
        let p = secrets.join(f);
        if f != "registry.json" || p.exists() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
}

#[test]
fn asking_for_keyutils_is_refused_with_the_way_out() {
    let env = Env::new();
    ok(env.after_reboot(&["init"], b"", true), "init");
    let out = env.after_reboot(&["--store", "keyutils", "creds", "set", "mailgun"], b"key-abc-123\n", true);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("forgets") && err.contains("--store file"), "{err}");
}

#[test]
fn a_library_that_kept_its_secrets_in_keyutils_moves_them_to_the_file_and_survives_a_reboot() {
    in_session(
        "a_library_that_kept_its_secrets_in_keyutils_moves_them_to_the_file_and_survives_a_reboot",
        legacy_library_moves_to_the_file,
    );
}

fn legacy_library_moves_to_the_file() {
    let env = Env::new();
    ok(env.after_reboot(&["init"], b"", true), "init");
    // Simulated earlier version: secrets stored in keyutils (this process's session
    // keyring), store.json says keyutils.
    let lib = env.lib();
    let keyutils = KeyringStore::connect(StoreKind::Keyutils).expect("keyutils must work here");
    let legacy = Secrets::with_store(&lib, Box::new(keyutils), "legacy");
    let secrets_dir = legacy.dir().to_path_buf();
    // Writing through `Secrets` into keyutils is refused now, so the entries go in
    // directly, as the earlier version wrote them.
    let raw = KeyringStore::connect(StoreKind::Keyutils).unwrap();
    let service = format!("blueprint-vault/{}", lib.area().file_name().unwrap().to_string_lossy());
    let file_secrets = {
        // Make the key, canary and blueprint with the file store, then put the values in keyutils.
        let tmp_file = env.tmp.path().join("scratch.sealed");
        let fs_store = bpv_engine::secrets::FileStore::new(tmp_file, PASSPHRASE.as_bytes()).unwrap();
        Secrets::with_store(&lib, Box::new(fs_store), "setup")
    };
    file_secrets.set_credential("mailgun", b"key-abc-123").unwrap();
    file_secrets.save_encrypted(&lib, "Blueprints/personal/check", YAML.as_bytes(), &BlueprintSave::default()).unwrap();
    let scratch =
        bpv_engine::secrets::FileStore::new(env.tmp.path().join("scratch.sealed"), PASSPHRASE.as_bytes()).unwrap();
    for name in ["master-key", "cred/mailgun"] {
        use bpv_engine::secrets::CredentialStore;
        let v = scratch.get(&service, name).unwrap().unwrap();
        raw.set(&service, name, &v).unwrap();
    }
    fs::remove_file(env.tmp.path().join("scratch.sealed")).unwrap();
    fs::write(secrets_dir.join("store.json"), br#"{ "store": "keyutils" }"#).unwrap();
    drop((legacy, file_secrets, lib));

    // Without the passphrase: still readable from keyutils, told the way out; nothing new stored there.
    let status: Value = serde_json::from_slice(&ok(
        env.same_session(&["--json", "keys", "status"], b"", false),
        "keys status without passphrase",
    ))
    .unwrap();
    assert_eq!((status["store"]["store"].as_str(), status["key"]["state"].as_str()), (Some("keyutils"), Some("ok")));
    assert!(status["store"]["reason"].as_str().unwrap().contains("BPV_CREDENTIALS_PASSPHRASE"), "{status}");
    assert!(status["store"]["holds"].as_str().unwrap().contains("LOST at logout or reboot"), "{status}");
    let refused = env.same_session(&["creds", "set", "other"], b"v-123\n", false);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("forgets everything"));

    // With it: moved into the passphrase file, and said so.
    let status: Value =
        serde_json::from_slice(&ok(env.same_session(&["--json", "keys", "status"], b"", true), "keys status")).unwrap();
    assert_eq!(status["store"]["store"], "file", "{status}");
    assert!(status["store"]["reason"].as_str().unwrap().contains("moved from keyutils"), "{status}");
    assert_eq!(status["key"]["state"], "ok");
    let store_json = fs::read_to_string(secrets_dir.join("store.json")).unwrap();
    assert!(store_json.contains("\"file\""), "{store_json}");
    assert_eq!(mode(&secrets_dir.join("credentials.sealed")), 0o600);

    check_after_reboot(&env);
    for name in ["master-key", "cred/mailgun"] {
        use bpv_engine::secrets::CredentialStore;
        raw.delete(&service, name).unwrap();
    }
}
