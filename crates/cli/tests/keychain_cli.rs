//! `bpv creds`, `bpv keys`, `save --encrypt` and `show` as real processes against a REAL
//! credential store: `$BPV_TEST_STORE` (`secret-service`, `keyutils`, or `file`, the
//! default). `scripts/keychain-tests.sh` runs this once per store inside the right session.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use bpv_engine::library::{Library, OpenOptions};
use bpv_engine::secrets::crypto;
use bpv_engine::secrets::{CredentialStore, FileStore, KeyringStore, Secrets, StoreKind};
use serde_json::Value;

const PASSPHRASE: &str = "file store passphrase for tests";

fn store_name() -> String {
    std::env::var("BPV_TEST_STORE").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "file".into())
}

struct Env {
    tmp: tempfile::TempDir,
    library: PathBuf,
    data: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let env = Env { library: tmp.path().join("lib"), data: tmp.path().join("data"), tmp };
        assert!(env.run(&["init"]).status.success());
        env
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bpv"));
        c.arg("--library").arg(&self.library).arg("--data-dir").arg(&self.data).arg("--store").arg(store_name());
        c.args(args).env_remove("BPV_RECOVERY_PASSPHRASE").env("BPV_CREDENTIALS_PASSPHRASE", PASSPHRASE);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child =
            self.cmd(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, out: Output, what: &str) -> Vec<u8> {
        assert!(out.status.success(), "bpv {what} failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.ok(self.run(&full), &args.join(" "));
        serde_json::from_slice(&out).unwrap_or_else(|e| panic!("bpv {args:?}: not JSON ({e})"))
    }

    fn lib(&self) -> Library {
        let mut o = OpenOptions::new(&self.library);
        o.data_dir = Some(self.data.clone());
        Library::open(o).unwrap()
    }

    fn store(&self, lib: &Library) -> Box<dyn CredentialStore> {
        match StoreKind::parse(&store_name()).unwrap() {
            StoreKind::File => Box::new(FileStore::new(Secrets::credential_file(lib), PASSPHRASE.as_bytes()).unwrap()),
            kind => Box::new(KeyringStore::connect(kind).unwrap()),
        }
    }

    /// The library's private area, found without opening the library (which would repair it).
    fn lib_area(&self) -> PathBuf {
        let root = fs::canonicalize(&self.library).unwrap();
        bpv_engine::paths::library_area(&self.data, &root)
    }

    fn service(&self, lib: &Library) -> String {
        format!("blueprint-vault/{}", lib.area().file_name().unwrap().to_string_lossy())
    }
}

fn error_code(out: &Output) -> String {
    let v: Value = serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|_| panic!("stderr is not JSON: {}", String::from_utf8_lossy(&out.stderr)));
    v["code"].as_str().unwrap().to_owned()
}

const YAML: &str = "name: Invoice chaser\nnodes:\n  - id: mail\n    type: email.send\n    parameters:\n      to: accounts@example.com\n      token: ${secret:mailgun}\n      body: overdue-invoice-wording-7f3a\n";

#[test]
fn creds_set_list_get_reveal_delete() {
    let env = Env::new();
    env.ok(env.run_stdin(&["creds", "set", "mailgun"], b"key-abc-123\n"), "creds set");
    env.ok(env.run_stdin(&["save", "Blueprints/personal/chase"], YAML.as_bytes()), "save");

    let list = env.json(&["creds", "list"]);
    assert_eq!(list["store"]["store"], store_name());
    assert_eq!(list["credentials"][0]["name"], "mailgun");
    assert_eq!(list["credentials"][0]["used_by"][0], "Blueprints/personal/chase.blueprint.yaml");
    assert!(list["credentials"][0].get("value").is_none());

    let meta = env.json(&["creds", "get", "mailgun"]);
    assert_eq!(meta["name"], "mailgun");
    assert!(meta.get("value").is_none(), "get without --reveal shows no value");
    assert_eq!(env.json(&["creds", "get", "mailgun", "--reveal"])["value"], "key-abc-123");
    let plain = env.ok(env.run(&["creds", "get", "mailgun", "--reveal"]), "reveal");
    assert_eq!(plain, b"key-abc-123\n");
    let audit = env.json(&["keys", "audit"]);
    assert_eq!(audit.as_array().unwrap().iter().filter(|e| e["action"] == "credential-reveal").count(), 2);

    env.ok(env.run(&["creds", "delete", "mailgun"]), "delete");
    let gone = env.run(&["--json", "creds", "get", "mailgun", "--reveal"]);
    assert_eq!(gone.status.code(), Some(3));
    assert_eq!(error_code(&gone), "not_found");
    let bad = env.run_stdin(&["--json", "creds", "set", "no spaces"], b"x");
    assert_eq!((bad.status.code(), error_code(&bad).as_str()), (Some(4), "invalid_argument"));
    // The reference is now to a missing credential, and says so.
    assert_eq!(env.json(&["creds", "list"])["missing"][0]["name"], "mailgun");
}

#[test]
fn save_encrypt_show_list_search_and_info() {
    let env = Env::new();
    let item = env.json(&["save", "Blueprints/personal/chase", "--encrypt", "--tag", "billing", "--file", &{
        let f = env.tmp.path().join("in.yaml");
        fs::write(&f, YAML).unwrap();
        f.to_string_lossy().into_owned()
    }]);
    assert_eq!((item["encrypted"].as_bool(), item["name"].as_str()), (Some(true), Some("Invoice chaser")));
    let shown = env.ok(env.run(&["show", "Blueprints/personal/chase.blueprint.yaml"]), "show");
    assert_eq!(shown, YAML.as_bytes());
    let on_disk = fs::read(env.library.join("Blueprints/personal/chase.blueprint.yaml")).unwrap();
    assert!(crypto::is_sealed(&on_disk));
    assert!(!env.json(&["search", "billing"]).as_array().unwrap().is_empty());
    assert_eq!(env.json(&["search", "overdue-invoice-wording-7f3a"]).as_array().map(Vec::len), Some(0));
    let info = env.json(&["info"]);
    assert_eq!(info["keychain"]["store"], store_name());
    assert_eq!(info["keychain"]["key"]["state"], "ok");
    assert_eq!(info["encrypted"], 1);

    // A plain save over it would write its content in plain text: refused, nothing changed.
    let refused = env.run_stdin(&["--json", "save", "Blueprints/personal/chase"], YAML.as_bytes());
    assert_eq!(error_code(&refused), "invalid_argument");
    assert_eq!(fs::read(env.library.join("Blueprints/personal/chase.blueprint.yaml")).unwrap(), on_disk);
}

#[test]
fn recovery_kit_and_recover_through_the_cli() {
    let env = Env::new();
    env.ok(env.run_stdin(&["save", "Blueprints/personal/chase", "--encrypt"], YAML.as_bytes()), "save");
    let kit = env.tmp.path().join("kit.txt");
    let kit_s = kit.to_string_lossy().into_owned();
    let short = env.run_stdin(&["--json", "keys", "recovery-kit", "--out", &kit_s], b"short\n");
    assert_eq!(error_code(&short), "invalid_argument");
    env.ok(env.run_stdin(&["keys", "recovery-kit", "--out", &kit_s], b"my long recovery phrase\n"), "kit");
    let page = fs::read_to_string(&kit).unwrap();
    assert!(page.contains("bpv keys recover") && page.contains("BEGIN BLUEPRINT VAULT RECOVERY KIT"));

    // Lose the keychain entry.
    let lib = env.lib();
    assert!(env.store(&lib).delete(&env.service(&lib), "master-key").unwrap());
    drop(lib);
    let missing = env.run(&["--json", "show", "Blueprints/personal/chase.blueprint.yaml"]);
    assert_eq!(error_code(&missing), "key_missing");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("bpv keys recover"));

    let wrong = env
        .cmd(&["--json", "keys", "recover", &kit_s])
        .env("BPV_RECOVERY_PASSPHRASE", "not the phrase at all")
        .output()
        .unwrap();
    assert_eq!(error_code(&wrong), "wrong_key");
    let out = env
        .cmd(&["--json", "keys", "recover", &kit_s])
        .env("BPV_RECOVERY_PASSPHRASE", "my long recovery phrase")
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&env.ok(out, "recover")).unwrap();
    assert_eq!(report["readable"], 1);
    assert_eq!(env.ok(env.run(&["show", "Blueprints/personal/chase.blueprint.yaml"]), "show"), YAML.as_bytes());
}

/// kill -9 at random moments of `bpv keys rotate`: afterwards every encrypted blueprint
/// opens, and all of them are sealed with the one key the library reports.
#[test]
fn rotation_killed_at_random_moments_leaves_one_consistent_key() {
    let env = Env::new();
    let mut expected = Vec::new();
    {
        let lib = env.lib();
        let secrets = Secrets::with_store(&lib, env.store(&lib), "test");
        for n in 0..120 {
            let yaml = format!("name: Rotating {n}\nnodes:\n  - id: a\n    type: t\n    parameters:\n      n: '{n}'\n");
            let path = format!("Blueprints/personal/r{n:03}.blueprint.yaml");
            secrets.save_encrypted(&lib, &path, yaml.as_bytes(), &Default::default()).unwrap();
            expected.push((path, yaml));
        }
    }
    // How long a whole rotation takes here, so the kills land across its phases: keys,
    // reading and sealing, staging, the journal, the renames, the promotion.
    env.ok(env.run(&["keys", "rotate"]), "rotate"); // warm caches first
    let started = std::time::Instant::now();
    env.ok(env.run(&["keys", "rotate"]), "rotate");
    let full = started.elapsed();
    let rounds = 12u32;
    let mut interrupted = 0;
    let mut seen_ids = HashSet::new();
    for round in 0..rounds {
        let mut child = env.cmd(&["keys", "rotate"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let jitter = Duration::from_millis(rand_u64() % 10);
        std::thread::sleep(full * round / (rounds / 2) + jitter);
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        // What the kill left, before anything repairs it: a committed journal, or not.
        let journals = fs::read_dir(env.lib_area().join("journal")).map(|d| d.count()).unwrap_or(0);
        if !finished {
            interrupted += 1;
        }

        let lib = env.lib(); // opening rolls a committed batch forward
        let secrets = Secrets::with_store(&lib, env.store(&lib), "test");
        let status = secrets.key_status(&lib);
        assert_eq!(status.state, "ok", "round {round}: {status:?}");
        let key_id = status.key_id.unwrap();
        eprintln!("round {round} of a {full:?} rotation: finished {finished}, journals left {journals}, key {key_id}");
        seen_ids.insert(key_id.clone());
        for (path, yaml) in &expected {
            let bytes = fs::read(env.library.join(path)).unwrap();
            assert_eq!(crypto::sealed_key_id(&bytes).as_deref(), Some(key_id.as_str()), "round {round}: {path}");
            assert_eq!(secrets.read_plain(&lib, path).unwrap().as_slice(), yaml.as_bytes(), "round {round}");
        }
        assert!(env.store(&lib).get(&env.service(&lib), "master-key.next").unwrap().is_none());
    }
    assert!(interrupted > 0, "no rotation was interrupted: the kills came too late");
    // And a rotation that runs to the end works after all that.
    env.ok(env.run(&["keys", "rotate"]), "rotate");
    assert!(!seen_ids.is_empty());
    assert_eq!(env.ok(env.run(&["show", &expected[7].0]), "show"), expected[7].1.as_bytes());
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

#[test]
fn decrypt_and_save_decrypt_store_a_blueprint_in_plain_text_again() {
    let env = Env::new();
    let rel = "Blueprints/personal/chase.blueprint.yaml";
    let plain_file = env.tmp.path().join("in.yaml");
    fs::write(&plain_file, YAML).unwrap();
    let plain_s = plain_file.to_string_lossy().into_owned();
    env.json(&["save", rel, "--tag", "billing", "--file", &plain_s]);
    let sealed = env.json(&["save", rel, "--encrypt", "--file", &plain_s]);
    assert_eq!(sealed["encrypted"], true);
    let area = env.lib_area();

    // A stale hash: a conflict, nothing changed.
    let stale = env.run(&["--json", "decrypt", rel, "--if-match", "00"]);
    assert_eq!((stale.status.code(), error_code(&stale).as_str()), (Some(5), "conflict"));
    assert!(crypto::is_sealed(&fs::read(env.library.join(rel)).unwrap()));

    let item = env.json(&["decrypt", rel, "--if-match", sealed["hash"].as_str().unwrap()]);
    assert_eq!((item["encrypted"].as_bool(), item["tags"][0].as_str()), (Some(false), Some("billing")));
    assert_eq!(fs::read(env.library.join(rel)).unwrap(), YAML.as_bytes(), "the plain YAML, byte for byte");
    assert_eq!(env.json(&["search", "overdue-invoice-wording-7f3a"]).as_array().map(Vec::len), Some(1));
    let audit = env.json(&["keys", "audit"]);
    let last = audit.as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["action"].as_str(), last["name"].as_str()), (Some("blueprint-decrypted"), Some(rel)));
    // No plain copy of the sealed version in the history (or anywhere in the private area
    // besides the index, which now holds the plain blueprint's words).
    let mut versions = 0;
    for folder in fs::read_dir(area.join("versions")).unwrap().flatten() {
        for version in
            fs::read_dir(folder.path()).unwrap().flatten().filter(|v| v.path().extension().is_some_and(|x| x == "yaml"))
        {
            versions += 1;
            assert!(crypto::is_sealed(&fs::read(version.path()).unwrap()), "{} is plain", version.path().display());
        }
    }
    assert_eq!(versions, 1, "the sealed version replaced by the decryption (the plain one was purged on encryption)");

    // save --decrypt: new plain content over an encrypted blueprint (plain save alone is refused).
    env.ok(env.run_stdin(&["save", rel, "--encrypt"], YAML.as_bytes()), "encrypt again");
    let refused = env.run_stdin(&["--json", "save", rel], b"name: Other\nnodes: []\n");
    assert_eq!(error_code(&refused), "invalid_argument");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--decrypt"));
    let saved: Value = serde_json::from_slice(
        &env.ok(env.run_stdin(&["--json", "save", rel, "--decrypt"], b"name: Other\nnodes: []\n"), "save --decrypt"),
    )
    .unwrap();
    assert_eq!(saved["encrypted"], false);
    assert_eq!(fs::read(env.library.join(rel)).unwrap(), b"name: Other\nnodes: []\n");
    let both = env.run(&["save", rel, "--encrypt", "--decrypt", "--file", &plain_s]);
    assert!(!both.status.success(), "--encrypt and --decrypt together are refused");
}
