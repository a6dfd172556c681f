//! Credentials and encryption at rest against a REAL credential store, chosen by
//! `$BPV_TEST_STORE`: `secret-service` (run inside `dbus-run-session` with gnome-keyring
//! unlocked), or `file` (the default: the passphrase-protected file, which works anywhere).
//! keyutils holds no library's secrets (it forgets them at reboot): see crates/cli/tests/reboot.rs. `scripts/keychain-tests.sh` runs this
//! file once per store. A store that is named but does not work fails the tests.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bpv_engine::Error;
use bpv_engine::library::{BlueprintSave, Library, OpenOptions};
use bpv_engine::secrets::crypto::{self, KdfParams};
use bpv_engine::secrets::{
    CredentialStore, FileStore, KeyringStore, RotateOptions, Secrets, StoreKind, secret_references,
};
use bpv_engine::transfer::ExportOptions;

fn store_kind() -> StoreKind {
    match std::env::var("BPV_TEST_STORE") {
        Ok(s) if !s.is_empty() => StoreKind::parse(&s).unwrap(),
        _ => StoreKind::File,
    }
}

struct Env {
    tmp: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    lib: Library,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lib");
        let data = tmp.path().join("data");
        let lib = open_lib(&root, &data);
        Env { tmp, root, data, lib }
    }

    /// A handle on the store this test runs against (a new connection each time, like
    /// a new process would make).
    fn store(&self) -> Box<dyn CredentialStore> {
        match store_kind() {
            StoreKind::File => Box::new(
                FileStore::new(Secrets::credential_file(&self.lib), b"test passphrase 123")
                    .unwrap()
                    .with_kdf(cheap_kdf()),
            ),
            kind => Box::new(KeyringStore::connect(kind).expect("the store under test must work here")),
        }
    }

    fn secrets(&self) -> Secrets {
        Secrets::with_store(&self.lib, self.store(), "test")
    }

    /// Keychain service of this library (documented in secrets/keys.rs).
    fn service(&self) -> String {
        format!("blueprint-vault/{}", self.lib.area().file_name().unwrap().to_string_lossy())
    }

    fn reopen(&mut self) {
        self.lib = open_lib(&self.root, &self.data);
    }
}

fn open_lib(root: &Path, data: &Path) -> Library {
    let mut o = OpenOptions::new(root);
    o.data_dir = Some(data.to_path_buf());
    o.create = true;
    Library::open(o).unwrap()
}

fn cheap_kdf() -> KdfParams {
    KdfParams { memory_kib: 8 * 1024, iterations: 1, ..KdfParams::fresh() }
}

fn marker(tag: &str) -> String {
    format!("{tag}-{:016x}{:016x}", rand_u64(), rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos());
    h.finish()
}

fn blueprint(name: &str, secret_text: &str) -> Vec<u8> {
    format!(
        "name: {name}\ndescription: {secret_text} in the description\nnodes:\n  - id: call\n    type: http\n    parameters:\n      url: https://api.example.com/?key=${{secret:openai}}\n      prompt: \"{secret_text}\"\n"
    )
    .into_bytes()
}

/// Every file under `dir` (not following links) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8], since: Option<SystemTime>) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false).into_iter().flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if since.is_some_and(|s| meta.modified().is_ok_and(|m| m < s)) || meta.len() > 64 << 20 {
            continue;
        }
        if let Ok(bytes) = fs::read(entry.path())
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            hits.push(entry.path().to_path_buf());
        }
    }
    hits
}

#[test]
fn credentials_round_trip_with_metadata_and_references() {
    let env = Env::new();
    let s = env.secrets();
    assert_eq!(s.choice().store, store_kind());
    let value = marker("sk-live");
    s.set_credential("openai", value.as_bytes()).unwrap();
    s.set_credential("slack.token", "xoxb-ünïcødé ✓".as_bytes()).unwrap();
    env.lib
        .save_blueprint(
            "Blueprints/personal/uses.blueprint.yaml",
            b"name: Uses\nnodes:\n  - id: a\n    type: t\n    parameters:\n      k: ${secret:openai}\n      m: ${secret:missing_one}\n",
            &BlueprintSave::default(),
        )
        .unwrap();

    // A fresh connection (as another process would have) reads the same values.
    let again = env.secrets();
    assert_eq!(again.credential_value("openai", false).unwrap().as_slice(), value.as_bytes());
    assert_eq!(again.credential_value("slack.token", false).unwrap().as_slice(), "xoxb-ünïcødé ✓".as_bytes());

    let list = again.list_credentials(&env.lib).unwrap();
    let names: Vec<&str> = list.credentials.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["openai", "slack.token"]);
    let openai = &list.credentials[0];
    assert!(openai.present && openai.last_used.is_some());
    assert_eq!(openai.used_by, ["Blueprints/personal/uses.blueprint.yaml"]);
    assert_eq!(list.missing.len(), 1);
    assert_eq!(list.missing[0].name, "missing_one");

    // Update, then delete.
    again.set_credential("openai", b"rotated-value").unwrap();
    assert_eq!(env.secrets().credential_value("openai", false).unwrap().as_slice(), b"rotated-value");
    again.delete_credential("openai").unwrap();
    assert!(matches!(env.secrets().credential_value("openai", false), Err(Error::NotFound(_))));
    assert!(env.store().get(&env.service(), "cred/openai").unwrap().is_none(), "the value left the store");
    assert!(matches!(again.delete_credential("openai"), Err(Error::NotFound(_))));

    // Bad input is refused and changes nothing.
    assert!(matches!(again.set_credential("bad name", b"x"), Err(Error::InvalidArgument(_))));
    assert!(matches!(again.set_credential("empty", b""), Err(Error::InvalidArgument(_))));
    assert_eq!(again.list_credentials(&env.lib).unwrap().credentials.len(), 1);

    // Reveals are audited; plain use is not.
    let actions: Vec<String> = again.audit_log().unwrap().into_iter().map(|e| e.action).collect();
    assert!(actions.contains(&"credential-set".to_owned()) && actions.contains(&"credential-delete".to_owned()));
    assert!(!actions.contains(&"credential-reveal".to_owned()));
    again.credential_value("slack.token", true).unwrap();
    let last = again.audit_log().unwrap().pop().unwrap();
    assert_eq!((last.action.as_str(), last.name.as_deref()), ("credential-reveal", Some("slack.token")));
}

#[test]
fn encrypted_blueprints_are_listed_by_metadata_and_read_back() {
    let env = Env::new();
    let s = env.secrets();
    let secret_word = marker("plaintextword");
    let yaml = blueprint("Quarterly digest", &secret_word);
    let save = BlueprintSave { tags: Some(vec!["finance".into()]), ..Default::default() };
    let item = s.save_encrypted(&env.lib, "Blueprints/personal/digest", &yaml, &save).unwrap();
    assert!(item.encrypted && item.valid, "{item:?}");
    assert_eq!(item.name, "Quarterly digest");
    assert_eq!(item.tags, ["finance"]);
    let on_disk = fs::read(env.root.join(&item.path)).unwrap();
    assert!(crypto::is_sealed(&on_disk));
    assert_eq!(s.read_plain(&env.lib, &item.path).unwrap().as_slice(), yaml.as_slice());

    // Findable by name and tags, never by content.
    let search = |q: &str| {
        env.lib
            .search(&bpv_engine::index::SearchQuery { text: q.into(), limit: 10, ..Default::default() })
            .unwrap()
            .total
    };
    assert_eq!(search("Quarterly"), 1);
    assert_eq!(search("finance"), 1);
    assert_eq!(search(&secret_word), 0);
    assert_eq!(search("api.example.com"), 0);
    // A full rebuild indexes it the same way.
    env.lib.reindex(None).unwrap();
    assert_eq!(env.lib.item(&item.path).unwrap().name, "Quarterly digest");
    assert_eq!(search(&secret_word), 0);

    // The encrypted blueprint's references count (decrypted in memory).
    s.set_credential("openai", b"v").unwrap();
    assert_eq!(s.list_credentials(&env.lib).unwrap().credentials[0].used_by, std::slice::from_ref(&item.path));
    let uses = s.credentials_used_by(&env.lib, &item.path).unwrap();
    assert_eq!((uses[0].name.as_str(), uses[0].exists), ("openai", true));
    s.delete_credential("openai").unwrap();
    assert!(!s.credentials_used_by(&env.lib, &item.path).unwrap()[0].exists, "a missing credential is flagged");

    // Invalid YAML is refused before anything is written.
    let bad = s.save_encrypted(&env.lib, "Blueprints/personal/bad", b"name: [unclosed\n", &BlueprintSave::default());
    assert!(matches!(bad, Err(Error::InvalidBlueprint(_))));
    assert!(!env.root.join("Blueprints/personal/bad.blueprint.yaml").exists());
}

#[test]
fn no_secret_and_no_plaintext_anywhere_on_disk() {
    let started = SystemTime::now() - std::time::Duration::from_secs(2);
    let env = Env::new();
    let s = env.secrets();
    let secret_value = marker("credential-value");
    let plain_word = marker("sealed-plaintext");
    s.set_credential("openai", secret_value.as_bytes()).unwrap();
    // Encrypted from the start, re-saved (history), encrypted over a plain file, deleted
    // (trash), exported, rotated, recovered through a kit.
    s.save_encrypted(&env.lib, "Blueprints/personal/a", &blueprint("A", &plain_word), &BlueprintSave::default())
        .unwrap();
    s.save_encrypted(
        &env.lib,
        "Blueprints/personal/a",
        &blueprint("A", &format!("{plain_word} v2")),
        &Default::default(),
    )
    .unwrap();
    env.lib
        .save_blueprint("Blueprints/shared/b.blueprint.yaml", &blueprint("B", &plain_word), &BlueprintSave::default())
        .unwrap();
    s.save_encrypted(&env.lib, "Blueprints/shared/b", &blueprint("B", &plain_word), &BlueprintSave::default()).unwrap();
    s.save_encrypted(&env.lib, "Blueprints/shared/c", &blueprint("C", &plain_word), &BlueprintSave::default()).unwrap();
    env.lib.delete("Blueprints/shared/c.blueprint.yaml").unwrap();
    let export_dir = env.tmp.path().join("export");
    env.lib
        .export(
            &["Blueprints/personal/a.blueprint.yaml".into(), "Blueprints/shared/b.blueprint.yaml".into()],
            &export_dir,
            &ExportOptions { allow_secrets: true, ..Default::default() },
            None,
        )
        .unwrap();
    s.rotate(&env.lib, &RotateOptions::default()).unwrap();
    let kit = s.recovery_kit(&env.lib, b"a long recovery passphrase").unwrap();
    fs::write(env.tmp.path().join("kit.txt"), kit.printable_page().unwrap()).unwrap();
    assert_eq!(
        s.read_plain(&env.lib, "Blueprints/personal/a.blueprint.yaml").unwrap().as_slice(),
        blueprint("A", &format!("{plain_word} v2")).as_slice()
    );
    // A plain copy was in the history before it was encrypted: it must be gone.
    for needle in [secret_value.as_bytes(), plain_word.as_bytes()] {
        let mut hits = files_containing(env.tmp.path(), needle, None);
        hits.extend(files_containing(&std::env::temp_dir(), needle, Some(started)));
        // $HOME only where the runner made it a scratch folder (the Secret Service run,
        // whose keyring file lives there); a real home is too big to walk.
        if let Some(home) = std::env::var_os("HOME").filter(|_| std::env::var_os("BPV_TEST_SCAN_HOME").is_some()) {
            hits.extend(files_containing(Path::new(&home), needle, Some(started)));
        }
        assert!(hits.is_empty(), "{} found in plain text in {hits:?}", String::from_utf8_lossy(needle));
    }
}

#[test]
fn a_flipped_byte_and_a_wrong_key_are_detected_with_the_way_out() {
    let env = Env::new();
    let s = env.secrets();
    let item =
        s.save_encrypted(&env.lib, "Blueprints/personal/x", &blueprint("X", "word"), &Default::default()).unwrap();
    let path = env.root.join(&item.path);
    let good = fs::read(&path).unwrap();
    for at in [0, 7, 10, crypto::HEADER_LEN - 1, crypto::HEADER_LEN + 3, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x20;
        fs::write(&path, &bad).unwrap();
        let got = s.read_plain(&env.lib, &item.path);
        assert!(got.is_err(), "flip at {at} not caught");
    }
    fs::write(&path, &good).unwrap();
    assert!(s.read_plain(&env.lib, &item.path).is_ok());

    // Another key in the store: the canary says so before anything is read.
    let other = crypto::MasterKey::generate();
    env.store().set(&env.service(), "master-key", other.as_bytes()).unwrap();
    let s2 = env.secrets();
    let status = s2.key_status(&env.lib);
    assert_eq!(status.state, "wrong", "{status:?}");
    match s2.read_plain(&env.lib, &item.path) {
        Err(Error::WrongKey(m)) => assert!(m.contains("bpv keys recover"), "{m}"),
        other => panic!("expected WrongKey, got {other:?}"),
    }
    // The listing still works: nothing else depends on the key.
    assert_eq!(env.lib.item(&item.path).unwrap().name, "X");
}

#[test]
fn recovery_from_the_kit_after_the_keychain_entry_is_deleted_and_on_a_new_machine() {
    let mut env = Env::new();
    let s = env.secrets();
    let yaml = blueprint("Recover me", "kit-word");
    let item = s.save_encrypted(&env.lib, "Blueprints/personal/r", &yaml, &Default::default()).unwrap();
    let kit = s.recovery_kit(&env.lib, b"correct horse battery staple").unwrap();
    let page = kit.printable_page().unwrap();
    assert!(matches!(s.recovery_kit(&env.lib, b"short"), Err(Error::InvalidArgument(_))));

    // The keychain entry is lost.
    assert!(env.store().delete(&env.service(), "master-key").unwrap());
    let s = env.secrets();
    match s.read_plain(&env.lib, &item.path) {
        Err(Error::KeyMissing(m)) => assert!(m.contains("bpv keys recover"), "{m}"),
        other => panic!("expected KeyMissing, got {other:?}"),
    }
    assert_eq!(s.key_status(&env.lib).state, "missing");
    assert!(matches!(s.recover(&env.lib, &page, b"wrong passphrase!!"), Err(Error::WrongKey(_))));
    let report = s.recover(&env.lib, &page, b"correct horse battery staple").unwrap();
    assert_eq!((report.readable, report.unreadable.len()), (1, 0));
    assert_eq!(env.secrets().read_plain(&env.lib, &item.path).unwrap().as_slice(), yaml.as_slice());

    // A new machine: the library folder copied, a fresh data dir, nothing in the store.
    let new_root = env.tmp.path().join("moved-lib");
    copy_dir(&env.root, &new_root);
    env.root = new_root;
    env.data = env.tmp.path().join("new-data");
    env.reopen();
    let s = env.secrets();
    assert!(matches!(s.read_plain(&env.lib, &item.path), Err(Error::KeyMissing(_))));
    assert_eq!(env.lib.item(&item.path).unwrap().name, "Recover me");
    s.recover(&env.lib, &kit.to_json().unwrap(), b"correct horse battery staple").unwrap();
    assert_eq!(env.secrets().read_plain(&env.lib, &item.path).unwrap().as_slice(), yaml.as_slice());
    let actions: Vec<String> = s.audit_log().unwrap().into_iter().map(|e| e.action).collect();
    assert!(actions.contains(&"key-recovered".to_owned()));

    // A kit for another library's key is refused and the current key is kept.
    let other = Env::new();
    let os = other.secrets();
    os.save_encrypted(&other.lib, "Blueprints/personal/o", &blueprint("O", "w"), &Default::default()).unwrap();
    let other_kit = os.recovery_kit(&other.lib, b"another long passphrase").unwrap();
    assert!(matches!(
        s.recover(&env.lib, &other_kit.to_json().unwrap(), b"another long passphrase"),
        Err(Error::WrongKey(_))
    ));
    assert!(env.secrets().read_plain(&env.lib, &item.path).is_ok());
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).into_iter().flatten() {
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn key_ids(env: &Env, paths: &[String]) -> HashSet<String> {
    paths.iter().map(|p| crypto::sealed_key_id(&fs::read(env.root.join(p)).unwrap()).unwrap()).collect()
}

#[test]
fn rotation_is_all_or_nothing() {
    let mut env = Env::new();
    let s = env.secrets();
    let mut paths = Vec::new();
    let mut contents = Vec::new();
    for n in 0..25 {
        let yaml = blueprint(&format!("Bp {n}"), &format!("content {n}"));
        paths.push(
            s.save_encrypted(&env.lib, &format!("Blueprints/personal/r{n}"), &yaml, &Default::default()).unwrap().path,
        );
        contents.push(yaml);
    }
    env.lib.save_blueprint("Blueprints/personal/plain.blueprint.yaml", b"name: Plain\n", &Default::default()).unwrap();
    let before = key_ids(&env, &paths);
    assert_eq!(before.len(), 1);

    // A failure mid-way (after 10 of 25 files were staged): nothing changed.
    let failed = s.rotate(&env.lib, &RotateOptions { fail_after: Some(10) });
    assert!(failed.is_err());
    assert_eq!(key_ids(&env, &paths), before);
    assert!(env.store().get(&env.service(), "master-key.next").unwrap().is_none());
    env.reopen();
    let s = env.secrets();
    assert_eq!(s.key_status(&env.lib).state, "ok");
    for (p, c) in paths.iter().zip(&contents) {
        assert_eq!(s.read_plain(&env.lib, p).unwrap().as_slice(), c.as_slice());
    }

    // The real thing: every file under the new key, the old one retired (history opens).
    let report = s.rotate(&env.lib, &RotateOptions::default()).unwrap();
    assert_eq!(report.reencrypted, 25);
    let after = key_ids(&env, &paths);
    assert_eq!(after, HashSet::from([report.new_key_id.clone()]));
    assert_ne!(after, before);
    let s = env.secrets();
    assert_eq!(s.key_status(&env.lib).key_id.as_deref(), Some(report.new_key_id.as_str()));
    for (p, c) in paths.iter().zip(&contents) {
        assert_eq!(s.read_plain(&env.lib, p).unwrap().as_slice(), c.as_slice());
    }
    assert_eq!(
        fs::read(env.root.join("Blueprints/personal/plain.blueprint.yaml")).unwrap(),
        b"name: Plain\n",
        "plain blueprints are not touched"
    );
    // An earlier version (sealed with the retired key) is put back and still opens.
    env.lib.restore_version(&paths[0], None).unwrap();
    assert_eq!(crypto::sealed_key_id(&fs::read(env.root.join(&paths[0])).unwrap()).unwrap(), report.old_key_id);
    assert_eq!(s.read_plain(&env.lib, &paths[0]).unwrap().as_slice(), contents[0].as_slice());
}

#[test]
fn an_interrupted_rotation_is_settled_by_the_files() {
    let env = Env::new();
    let s = env.secrets();
    let item = s.save_encrypted(&env.lib, "Blueprints/personal/i", &blueprint("I", "w"), &Default::default()).unwrap();
    let old_id = s.key_status(&env.lib).key_id.unwrap();
    // A `next` key that no file uses (the process died before the batch committed).
    let next = crypto::MasterKey::generate();
    env.store().set(&env.service(), "master-key.next", next.as_bytes()).unwrap();
    let s = env.secrets();
    assert_eq!(s.key_status(&env.lib).key_id.as_deref(), Some(old_id.as_str()));
    assert!(env.store().get(&env.service(), "master-key.next").unwrap().is_none());
    assert!(s.read_plain(&env.lib, &item.path).is_ok());

    // The batch committed (files under the new key) but the process died before the
    // promotion: the old key is still `master-key`, the new one `next`, the canary old.
    let store = env.store();
    let old_key = store.get(&env.service(), "master-key").unwrap().unwrap();
    let canary = fs::read(s.dir().join("canary.sealed")).unwrap();
    let report = s.rotate(&env.lib, &RotateOptions::default()).unwrap();
    let new_key = store.get(&env.service(), "master-key").unwrap().unwrap();
    store.set(&env.service(), "master-key", &old_key).unwrap();
    store.set(&env.service(), "master-key.next", &new_key).unwrap();
    fs::write(s.dir().join("canary.sealed"), &canary).unwrap();
    let s = env.secrets();
    assert_eq!(s.key_status(&env.lib).key_id.as_deref(), Some(report.new_key_id.as_str()));
    assert!(store.get(&env.service(), "master-key.next").unwrap().is_none());
    assert!(s.read_plain(&env.lib, &item.path).is_ok());
    let last = s.audit_log().unwrap().pop().unwrap();
    assert_eq!(last.action, "rotation-finished");
}

#[test]
fn nonces_never_repeat_across_saves() {
    let env = Env::new();
    let s = env.secrets();
    let mut seen = HashSet::new();
    for n in 0..60 {
        // The same content every time: only the nonce makes the files differ.
        let it = s.save_encrypted(
            &env.lib,
            &format!("Blueprints/personal/n{}", n % 3),
            b"name: Same\n",
            &Default::default(),
        );
        let bytes = fs::read(env.root.join(it.unwrap().path)).unwrap();
        assert!(seen.insert(crypto::sealed_nonce(&bytes).unwrap().to_vec()), "nonce repeated at save {n}");
    }
}

#[test]
fn the_passphrase_file_refuses_a_wrong_passphrase_and_holds_no_plain_text() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("creds.sealed");
    let store = FileStore::new(path.clone(), b"right passphrase").unwrap().with_kdf(cheap_kdf());
    let value = marker("file-store-value");
    store.set("svc", "name", value.as_bytes()).unwrap();
    assert_eq!(store.get("svc", "name").unwrap().unwrap().as_slice(), value.as_bytes());
    assert!(files_containing(tmp.path(), value.as_bytes(), None).is_empty());
    assert!(files_containing(tmp.path(), b"name", None).is_empty(), "even names are sealed");
    let wrong = FileStore::new(path.clone(), b"wrong passphrase").unwrap();
    assert!(matches!(wrong.get("svc", "name"), Err(Error::WrongKey(_))));
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    fs::write(&path, &bytes).unwrap();
    assert!(store.get("svc", "name").is_err());
}

#[test]
fn references_parse_like_the_docs_say() {
    assert_eq!(secret_references(b"x: ${secret:openai} ${secret:openai}"), ["openai"]);
}

#[test]
fn an_encrypted_blueprint_travels_sealed_through_a_bundle_and_opens_with_its_kit() {
    let a = Env::new();
    let sa = a.secrets();
    let yaml = blueprint("Travelling", "bundle-word");
    let item = sa.save_encrypted(&a.lib, "Blueprints/personal/t", &yaml, &Default::default()).unwrap();
    let kit = sa.recovery_kit(&a.lib, b"travelling passphrase").unwrap().to_json().unwrap();
    let zip = a.tmp.path().join("out.zip");
    a.lib.export(std::slice::from_ref(&item.path), &zip, &ExportOptions::default(), None).unwrap();
    assert!(files_containing(a.tmp.path(), b"bundle-word", None).is_empty());

    let b = Env::new();
    let opts = bpv_engine::transfer::ImportOptions::default();
    let plan = b.lib.import_plan(std::slice::from_ref(&zip), &opts, None).unwrap();
    let report = b.lib.import_apply(&plan, &opts, None).unwrap();
    assert_eq!(report.imported, std::slice::from_ref(&item.path), "{report:?}");
    let got = b.lib.item(&item.path).unwrap();
    assert!(got.encrypted && got.valid, "{got:?}");
    assert_eq!(got.name, "Travelling");
    let sb = b.secrets();
    assert!(matches!(sb.read_plain(&b.lib, &item.path), Err(Error::KeyMissing(_))));
    sb.recover(&b.lib, &kit, b"travelling passphrase").unwrap();
    assert_eq!(b.secrets().read_plain(&b.lib, &item.path).unwrap().as_slice(), yaml.as_slice());
}

/// Versions in a blueprint's history folder (layout: library/history.rs).
fn history_files(env: &Env, rel: &str) -> Vec<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(rel.as_bytes()));
    let dir = env.lib.area().join("versions").join(&digest[..20]);
    let Ok(entries) = fs::read_dir(&dir) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        .map(|e| fs::read(e.path()).unwrap())
        .collect()
}

#[test]
fn decrypting_gives_back_the_exact_plain_file_keeps_the_companion_and_the_history_sealed() {
    let env = Env::new();
    let s = env.secrets();
    let rel = "Blueprints/personal/digest.blueprint.yaml";
    let word = marker("decryptword").replace('-', "");
    // Bytes a YAML writer would not produce (comment, CRLF, odd spacing): must come back as they were.
    let original = format!("# keep me\r\nname:   Digest\r\nnodes:\r\n  - id: a\r\n    type: t\r\n    parameters: {{k: \"{word} ${{secret:openai}}\"}}\r\n").into_bytes();
    let save =
        BlueprintSave { tags: Some(vec!["finance".into()]), description: Some("Monthly".into()), ..Default::default() };
    env.lib.save_blueprint(rel, &original, &save).unwrap();
    let encrypted = s.save_encrypted(&env.lib, rel, &original, &BlueprintSave::default()).unwrap();
    let v2 = blueprint("Digest", &format!("{word} v2"));
    let encrypted = s
        .save_encrypted(&env.lib, rel, &v2, &BlueprintSave { if_match: Some(encrypted.hash), ..Default::default() })
        .unwrap();
    assert!(encrypted.encrypted);
    let sealed_history = history_files(&env, rel);
    assert_eq!(sealed_history.len(), 1, "the first sealed version (the plain one was purged)");
    assert!(sealed_history.iter().all(|v| crypto::is_sealed(v)), "the plain version was purged when encrypted");

    // A stale hash is a conflict and changes nothing.
    let stale = s.decrypt(&env.lib, rel, Some("0000"));
    assert!(matches!(stale, Err(Error::Conflict(_))), "{stale:?}");
    assert!(crypto::is_sealed(&fs::read(env.root.join(rel)).unwrap()));

    let item = s.decrypt(&env.lib, rel, Some(&encrypted.hash)).unwrap();
    assert!(!item.encrypted && item.valid, "{item:?}");
    assert_eq!(fs::read(env.root.join(rel)).unwrap(), v2, "the file is the plain YAML that was sealed, byte for byte");
    assert_eq!(
        (item.tags.as_slice(), item.description.as_deref()),
        (["finance".to_owned()].as_slice(), Some("Monthly"))
    );
    let companion: serde_json::Value =
        serde_json::from_slice(&fs::read(env.root.join("Blueprints/personal/digest.blueprint.meta.json")).unwrap())
            .unwrap();
    assert_eq!(companion["tags"], serde_json::json!(["finance"]));
    assert!(companion.get("encrypted").is_none(), "the flag is cleared: {companion}");
    // History: the sealed version replaced went in sealed; no plain copy of any sealed version appeared.
    let history = history_files(&env, rel);
    assert_eq!(history.len(), sealed_history.len() + 1);
    assert!(history.iter().all(|v| crypto::is_sealed(v)), "no plain copy of a sealed version");
    // Plain again: searchable by content, and a plain save is accepted.
    let hits =
        env.lib.search(&bpv_engine::index::SearchQuery { text: word.clone(), limit: 5, ..Default::default() }).unwrap();
    assert_eq!(hits.total, 1);
    assert!(bpv_engine::secrets::refuse_plain_overwrite(&env.lib, rel).is_ok());
    let log = s.audit_log().unwrap();
    let last = log.last().unwrap();
    assert_eq!((last.action.as_str(), last.name.as_deref()), ("blueprint-decrypted", Some(rel)));
    // Decrypting a plain blueprint changes nothing and records nothing.
    let again = s.decrypt(&env.lib, rel, None).unwrap();
    assert_eq!(again.hash, item.hash);
    assert_eq!(s.audit_log().unwrap().len(), log.len());
}

#[test]
fn decrypting_without_the_key_fails_with_the_way_out_and_changes_nothing() {
    let env = Env::new();
    let s = env.secrets();
    let rel = "Blueprints/personal/locked.blueprint.yaml";
    s.save_encrypted(&env.lib, rel, &blueprint("Locked", "x"), &BlueprintSave::default()).unwrap();
    let before = fs::read(env.root.join(rel)).unwrap();
    env.store().delete(&env.service(), "master-key").unwrap();
    let err = env.secrets().decrypt(&env.lib, rel, None).unwrap_err();
    assert!(matches!(err, Error::KeyMissing(_)), "{err:?}");
    assert!(err.to_string().contains("bpv keys recover"), "{err}");
    assert_eq!(fs::read(env.root.join(rel)).unwrap(), before);
    assert!(env.lib.item(rel).unwrap().encrypted);
}

#[test]
fn an_explicit_plain_save_replaces_an_encrypted_blueprint() {
    let env = Env::new();
    let s = env.secrets();
    let rel = "Blueprints/personal/swap.blueprint.yaml";
    s.save_encrypted(&env.lib, rel, &blueprint("Swap", "x"), &BlueprintSave::default()).unwrap();
    let new = b"name: Swap plain\nnodes: []\n";
    let item = s.save_decrypted(&env.lib, rel, new, &BlueprintSave::default()).unwrap();
    assert!(!item.encrypted);
    assert_eq!(fs::read(env.root.join(rel)).unwrap(), new);
    assert!(history_files(&env, rel).iter().all(|v| crypto::is_sealed(v)));
    assert_eq!(s.audit_log().unwrap().last().unwrap().action, "blueprint-decrypted");
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[test]
fn references_come_from_the_index_and_an_encrypted_blueprints_names_stay_out_of_it() {
    let env = Env::new();
    let s = env.secrets();
    let plain = "Blueprints/personal/plain.blueprint.yaml";
    let sealed = "Blueprints/personal/sealed.blueprint.yaml";
    // A credential name only the encrypted blueprint mentions.
    let hidden = format!("zq{:x}", rand_u64());
    env.lib
        .save_blueprint(
            plain,
            b"name: P\nnodes:\n  - id: a\n    type: t\n    parameters: {k: '${secret:openai}', j: '${secret:gone}'}\n",
            &BlueprintSave::default(),
        )
        .unwrap();
    let yaml = format!(
        "name: S\nnodes:\n  - id: a\n    type: t\n    parameters: {{k: '${{secret:{hidden}}}', o: '${{secret:openai}}'}}\n"
    );
    s.save_encrypted(&env.lib, sealed, yaml.as_bytes(), &BlueprintSave::default()).unwrap();
    let expected = pairs(&[(plain, "openai"), (plain, "gone")]);
    assert_eq!(env.lib.index().secret_references().unwrap(), expected, "plain references, in order");
    assert!(env.lib.index().secret_references_of(sealed).unwrap().is_empty());
    assert_eq!(env.lib.index().encrypted_paths().unwrap(), [sealed]);

    s.set_credential("openai", b"v").unwrap();
    s.set_credential(&hidden, b"v").unwrap();
    let list = s.list_credentials(&env.lib).unwrap();
    let used_by = |name: &str| list.credentials.iter().find(|c| c.name == name).unwrap().used_by.clone();
    assert_eq!(used_by("openai"), [plain, sealed], "the encrypted one's references are read with the key");
    assert_eq!(used_by(&hidden), [sealed]);
    assert_eq!(
        (list.missing[0].name.as_str(), list.missing[0].used_by.as_slice()),
        ("gone", [plain.to_owned()].as_slice())
    );
    let uses = s.credentials_used_by(&env.lib, plain).unwrap();
    assert_eq!(
        uses.iter().map(|u| (u.name.as_str(), u.exists)).collect::<Vec<_>>(),
        [("openai", true), ("gone", false)]
    );
    let uses = s.credentials_used_by(&env.lib, sealed).unwrap();
    assert_eq!(
        uses.iter().map(|u| (u.name.clone(), u.exists)).collect::<Vec<_>>(),
        [(hidden.clone(), true), ("openai".into(), true)]
    );

    // A rebuild fills the table again from the files, the same way.
    env.lib.reindex(None).unwrap();
    assert_eq!(env.lib.index().secret_references().unwrap(), expected);
    // Names in an encrypted blueprint are its content: no index file holds them.
    let index_file = PathBuf::from(env.lib.info().unwrap().index);
    let index_dir = index_file.parent().unwrap();
    let index_hits: Vec<_> = files_containing(index_dir, hidden.as_bytes(), None)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&*index_file.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(index_hits.is_empty(), "{hidden} is in the index: {index_hits:?}");

    // Deleted: its references go; decrypted: its references come into the index (plain now).
    env.lib.delete(plain).unwrap();
    s.decrypt(&env.lib, sealed, None).unwrap();
    assert_eq!(env.lib.index().secret_references().unwrap(), pairs(&[(sealed, &hidden), (sealed, "openai")]));
}

#[test]
fn an_index_from_before_the_references_table_fills_it_on_the_next_open() {
    let mut env = Env::new();
    let rel = "Blueprints/personal/old.blueprint.yaml";
    env.lib.save_blueprint(rel, b"name: Old\nnodes: []\nx: ${secret:legacy}\n", &BlueprintSave::default()).unwrap();
    let index_file = env.lib.info().unwrap().index;
    // Back to schema 1, as an earlier version left it.
    {
        let conn = rusqlite::Connection::open(&index_file).unwrap();
        conn.execute_batch(
            "DROP TABLE item_secret_refs; DELETE FROM schema_version WHERE version > 1; PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .unwrap();
    }
    env.reopen();
    assert_eq!(env.lib.index().secret_references().unwrap(), pairs(&[(rel, "legacy")]));
}
