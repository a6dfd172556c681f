//! End-to-end tests of `bpv backup | backups | verify | restore | prune`: the real
//! binary, real folders, real processes (including kill -9 mid-backup).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    library: PathBuf,
    data: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let env = Env { library: dir.join("My Library"), data: dir.join("data"), dir, _tmp: tmp };
        let out = env.run(&["init"]);
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        env
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bpv"));
        c.arg("--library").arg(&self.library).arg("--data-dir").arg(&self.data).args(args);
        c.env_remove("BPV_LIBRARY").env_remove("BPV_DATA_DIR");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.run(&full);
        assert!(out.status.success(), "bpv {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bpv {args:?}: not JSON ({e}): {:?}", out.stdout))
    }

    fn write(&self, rel: &str, body: &[u8]) {
        let p = self.library.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }

    fn repo(&self) -> String {
        self.dir.join("repo").to_string_lossy().into_owned()
    }
}

fn yaml(name: &str) -> Vec<u8> {
    format!("name: {name}\ndescription: backup test\nnodes:\n  - id: a\n    type: t\n").into_bytes()
}

fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn backup_json_shape_list_verify_and_restore_byte_for_byte() {
    let env = Env::new();
    env.write("Blueprints/personal/sales/digest.blueprint.yaml", &yaml("Digest"));
    env.write("Blueprints/shared/ünïcødé/深い/x.blueprint.yaml", &yaml("Unicode"));
    env.write("Templates/empty.blueprint.yaml", b"");
    env.write("Exports/big.bin", &bytes(3_000_000, 1));
    let before = tree(&env.library);

    let r = env.json(&["backup"]);
    for k in ["id", "files", "bytes", "new_bytes", "millis"] {
        assert!(r.get(k).is_some(), "backup JSON lacks {k}: {r}");
    }
    assert_eq!(r["files"].as_u64().unwrap() as usize, before.len());
    let id = r["id"].as_str().unwrap().to_owned();
    // Default repository: in the data dir, never in the library.
    assert!(tree(&env.library) == before, "backup wrote into the library");
    assert!(r["repository"].as_str().unwrap().starts_with(env.data.to_str().unwrap()));

    let list = env.json(&["backups"]);
    let first = &list.as_array().unwrap()[0];
    assert_eq!(first["id"], r["id"]);
    for k in ["created", "files", "bytes", "new_bytes"] {
        assert!(first.get(k).is_some(), "backups JSON lacks {k}");
    }
    let contents = env.json(&["backups", "--contents", &id]);
    assert_eq!(contents.as_array().unwrap().len(), before.len());

    let v = env.json(&["verify", &id]);
    assert_eq!(v["ok"], true);

    let out = env.dir.join("restored");
    let rep = env.json(&["restore", &id, "--to", out.to_str().unwrap()]);
    assert_eq!(rep["files"].as_u64().unwrap() as usize, before.len());
    assert_eq!(tree(&out), before);

    // A non-empty target is refused with exit code 5 (already exists).
    let o = env.run(&["--json", "restore", &id, "--to", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(5));
    let err: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(err["code"], "already_exists");

    // One file back into the library.
    env.write("Blueprints/personal/sales/digest.blueprint.yaml", &yaml("Oops"));
    env.json(&["restore", &id, "--path", "Blueprints/personal/sales/digest.blueprint.yaml"]);
    assert_eq!(fs::read(env.library.join("Blueprints/personal/sales/digest.blueprint.yaml")).unwrap(), yaml("Digest"));

    // Unchanged: (almost) nothing new.
    let again = env.json(&["backup"]);
    assert!(again["new_bytes"].as_u64().unwrap() < 1000, "{again}");

    // Unknown snapshot: exit 3.
    assert_eq!(env.run(&["verify", "20990101T000000000Z-000000"]).status.code(), Some(3));
}

/// Every folder under `dir`, relative (empty ones included; symlinks not followed), sorted.
fn folders(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn restore_brings_back_empty_folders_and_backup_says_what_it_left_out() {
    let env = Env::new();
    env.write("Blueprints/personal/a.blueprint.yaml", &yaml("A"));
    fs::create_dir_all(env.library.join("Templates/for later/nested")).unwrap();
    std::os::unix::fs::symlink("personal/a.blueprint.yaml", env.library.join("Blueprints/alias.blueprint.yaml"))
        .unwrap();

    let o = env.run(&["backup"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("not in this snapshot:") && said.contains("alias.blueprint.yaml: a symbolic link"), "{said}");
    let r = env.json(&["backup"]);
    let id = r["id"].as_str().unwrap().to_owned();
    assert_eq!(r["skipped"].as_array().unwrap().len(), 1, "{r}");

    let out = env.dir.join("restored");
    env.json(&["restore", &id, "--to", out.to_str().unwrap()]);
    assert_eq!(folders(&out), folders(&env.library));
    assert!(out.join("Templates/for later/nested").is_dir() && out.join("Exports").is_dir());
    assert_eq!(tree(&out).len(), 1);
}

#[test]
fn corruption_is_reported_with_paths_and_restore_refuses_unless_partial() {
    let env = Env::new();
    // `a` is big enough for a frame of its own; `b` shares a compressed block with the
    // other small objects, which the flip damages with it.
    let alpha: Vec<u8> = (0..100_000u32).flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()).collect();
    env.write("Blueprints/personal/a.blueprint.yaml", &alpha);
    env.write("Blueprints/personal/b.blueprint.yaml", &yaml("Beta"));
    let repo = env.repo();
    let id = env.json(&["backup", "--to", &repo])["id"].as_str().unwrap().to_owned();
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(yaml("Beta")));
    let (obj, offset, len) = bpv_engine::backup::Repo::open(Path::new(&repo)).unwrap().object_location(&h).unwrap();
    let mut b = fs::read(&obj).unwrap();
    let mid = (offset + len / 2) as usize;
    b[mid] ^= 0x40;
    fs::write(&obj, b).unwrap();

    let o = env.run(&["--json", "verify", &id, "--from", &repo]);
    assert_eq!(o.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let names_b = |problems: &Value| {
        problems.as_array().unwrap().iter().any(|p| p["paths"][0] == "Blueprints/personal/b.blueprint.yaml")
    };
    assert!(names_b(&report["problems"]), "{report}");
    let err: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(err["code"], "corrupt");

    let out = env.dir.join("out");
    let o = env.run(&["--json", "restore", &id, "--from", &repo, "--to", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("b.blueprint.yaml"));
    assert!(!out.exists(), "refused restore left a folder");

    let rep = env.json(&["restore", &id, "--from", &repo, "--to", out.to_str().unwrap(), "--partial"]);
    assert!(names_b(&rep["not_restored"]), "{rep}");
    assert_eq!(fs::read(out.join("Blueprints/personal/a.blueprint.yaml")).unwrap(), alpha);
    assert!(!out.join("Blueprints/personal/b.blueprint.yaml").exists());

    // A flipped byte in the manifest.
    let manifest = Path::new(&repo).join("snapshots").join(format!("{id}.json"));
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, text.replacen("\"size\":", "\"size\" :", 1).replacen("a.blueprint", "A.blueprint", 1))
        .unwrap();
    let o = env.run(&["--json", "verify", &id, "--from", &repo]);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["problems"][0]["kind"], "manifest");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn newer_repository_formats_and_missing_drives_get_clear_errors() {
    let env = Env::new();
    let repo = env.repo();
    env.json(&["backup", "--to", &repo]);
    fs::write(Path::new(&repo).join("config.json"), br#"{"format": 7, "created": "2030-01-01T00:00:00Z"}"#).unwrap();
    let o = env.run(&["--json", "backups", "--from", &repo]);
    assert_ne!(o.status.code(), Some(0));
    let err: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(err["code"], "unsupported");
    assert!(err["message"].as_str().unwrap().contains("newer"));
    let o = env.run(&["--json", "backup", "--to", "/nonexistent-drive/backups"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("drive"));
}

#[test]
fn prune_keeps_the_last_n_and_they_still_restore() {
    let env = Env::new();
    let repo = env.repo();
    let mut ids = Vec::new();
    for i in 0..3 {
        env.write("Blueprints/personal/x.blueprint.yaml", &yaml(&format!("Version {i}")));
        ids.push(env.json(&["backup", "--to", &repo])["id"].as_str().unwrap().to_owned());
    }
    let o = env.run(&["prune", "--from", &repo]);
    assert_eq!(o.status.code(), Some(4), "prune without a policy must refuse");
    let p = env.json(&["prune", "--from", &repo, "--keep-last", "1"]);
    assert_eq!(p["removed"].as_array().unwrap().len(), 2);
    assert!(p["objects_removed"].as_u64().unwrap() >= 2);
    let list = env.json(&["backups", "--from", &repo]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(env.json(&["verify", &ids[2], "--from", &repo])["ok"], true);
    let out = env.dir.join("out");
    env.json(&["restore", &ids[2], "--from", &repo, "--to", out.to_str().unwrap()]);
    assert_eq!(fs::read(out.join("Blueprints/personal/x.blueprint.yaml")).unwrap(), yaml("Version 2"));
}

#[test]
fn in_place_restore_via_cli() {
    let env = Env::new();
    env.write("Blueprints/personal/a.blueprint.yaml", &yaml("Alpha"));
    let id = env.json(&["backup"])["id"].as_str().unwrap().to_owned();
    let before = tree(&env.library);
    env.write("Blueprints/personal/a.blueprint.yaml", &yaml("Broken"));
    env.write("Blueprints/personal/extra.blueprint.yaml", &yaml("Extra"));
    let rep = env.json(&["restore", &id, "--in-place"]);
    assert!(rep["before"].is_string());
    assert_eq!(tree(&env.library), before);
    // The index follows: `list` no longer shows the extra file.
    let list = env.json(&["list"]);
    assert_eq!(list.as_array().map(|a| a.len()).unwrap_or_else(|| list["items"].as_array().unwrap().len()), 1);
}

/// Tiny deterministic PRNG for kill timings.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[test]
fn kill_9_mid_backup_leaves_a_repository_that_verifies_and_restores() {
    let env = Env::new();
    let repo = env.repo();
    for i in 0..1500 {
        env.write(
            &format!("Blueprints/personal/f{:02}/b{i:04}.blueprint.yaml", i % 37),
            &yaml(&format!("Blueprint {i}")),
        );
    }
    for i in 0..4 {
        env.write(&format!("Templates/big{i}.bin"), &bytes(4_000_000, 50 + i));
    }
    let original = tree(&env.library);
    let first = env.json(&["backup", "--to", &repo])["id"].as_str().unwrap().to_owned();

    // How long does a full backup of changed content take? Kill within that.
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("kill-9 test seed {seed}");
    let mut rng = Lcg(seed);
    let mut killed = 0;
    for round in 0..8u64 {
        // New content everywhere so the child has real writing to do.
        for i in 0..4 {
            env.write(&format!("Templates/big{i}.bin"), &bytes(4_000_000, 1000 + round * 10 + i));
        }
        for i in (0..1500).step_by(7) {
            let rel = format!("Blueprints/personal/f{:02}/b{i:04}.blueprint.yaml", i % 37);
            env.write(&rel, &yaml(&format!("Blueprint {i} round {round}")));
        }
        let mut child =
            env.cmd(&["--json", "backup", "--to", &repo]).stdout(std::process::Stdio::null()).spawn().unwrap();
        let delay = Duration::from_millis(rng.next(400));
        let t = Instant::now();
        while t.elapsed() < delay {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();

        // Every snapshot that exists is whole and verifies.
        let list = env.json(&["backups", "--from", &repo]);
        for s in list.as_array().unwrap() {
            let id = s["id"].as_str().unwrap();
            let v = env.run(&["--json", "verify", id, "--from", &repo]);
            assert!(
                v.status.success(),
                "round {round}: snapshot {id} fails verify after kill -9: {}",
                String::from_utf8_lossy(&v.stdout)
            );
        }
    }
    eprintln!("killed {killed} of 8 backups mid-way");
    assert!(killed >= 1, "no backup was interrupted; the test proved nothing");
    let out = env.dir.join("restored-first");
    env.json(&["restore", &first, "--from", &repo, "--to", out.to_str().unwrap()]);
    assert_eq!(tree(&out), original);
    // And the repository takes new backups (reusing intact orphans) that verify.
    let last = env.json(&["backup", "--to", &repo]);
    assert_eq!(env.json(&["verify", last["id"].as_str().unwrap(), "--from", &repo])["ok"], true);
    let out = env.dir.join("restored-last");
    env.json(&["restore", last["id"].as_str().unwrap(), "--from", &repo, "--to", out.to_str().unwrap()]);
    assert_eq!(tree(&out), tree(&env.library));
}

#[test]
fn kill_9_mid_prune_never_loses_a_kept_snapshot() {
    let env = Env::new();
    let repo = env.repo();
    let mut ids = Vec::new();
    for round in 0..6u64 {
        for i in 0..300u64 {
            if i % 6 == round || round == 0 {
                let rel = format!("Blueprints/personal/p{:02}/b{i:03}.blueprint.yaml", i % 11);
                env.write(&rel, &bytes(20_000, round * 1000 + i));
            }
        }
        ids.push(env.json(&["backup", "--to", &repo])["id"].as_str().unwrap().to_owned());
    }
    let newest_tree = tree(&env.library);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("kill-9 prune seed {seed}");
    let mut rng = Lcg(seed);
    let mut killed = 0;
    for keep in (1..=5).rev() {
        let mut child = env
            .cmd(&["prune", "--from", &repo, "--keep-last", &keep.to_string()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.next(60)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        let list = env.json(&["backups", "--from", &repo]);
        let left: Vec<&str> = list.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert!(left.contains(&ids[5].as_str()), "the newest snapshot was lost");
        for id in left {
            let v = env.run(&["--json", "verify", id, "--from", &repo]);
            assert!(
                v.status.success(),
                "keep {keep}: {id} fails verify after kill -9 of prune: {}",
                String::from_utf8_lossy(&v.stdout)
            );
        }
    }
    eprintln!("killed {killed} of 5 prunes mid-way");
    env.json(&["prune", "--from", &repo, "--keep-last", "1"]);
    let out = env.dir.join("out");
    env.json(&["restore", &ids[5], "--from", &repo, "--to", out.to_str().unwrap()]);
    assert_eq!(tree(&out), newest_tree);
}

/// `bpv backup --with-secrets` / `bpv restore --with-secrets` with the real file store:
/// the values come back into the restored library's store after the passphrase, a wrong
/// passphrase restores no value, and no value is readable in the repository.
#[test]
fn backup_and_restore_with_secrets_round_trip_values_behind_the_passphrase() {
    let env = Env::new();
    env.write("Blueprints/personal/a.blueprint.yaml", &yaml("Alpha"));
    let with_store = |c: &mut Command| {
        c.env("BPV_CREDENTIAL_STORE", "file").env("BPV_CREDENTIALS_PASSPHRASE", "file store passphrase");
    };
    let mut set = env.cmd(&["creds", "set", "openai"]);
    with_store(&mut set);
    set.stdin(std::process::Stdio::piped());
    let mut child = set.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"sk-cli-value-5a4b3c2d1e0f").unwrap();
    assert!(child.wait().unwrap().success());

    let mut b = env.cmd(&["--json", "backup", "--to", &env.repo(), "--with-secrets"]);
    with_store(&mut b);
    let out = b.env("BPV_BACKUP_PASSPHRASE", "backup passphrase 42").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["id"].as_str().unwrap().to_owned();
    for file in walk(&PathBuf::from(env.repo())) {
        // (Raw bytes; the engine's test also scans decompressed objects.)
        let raw = fs::read(&file).unwrap();
        assert!(!raw.windows(10).any(|w| w == b"sk-cli-val"), "the value is in {}", file.display());
    }

    let restore = |to: &str, passphrase: &str| {
        let mut c = env.cmd(&["--json", "restore", &id, "--from", &env.repo(), "--to", to, "--with-secrets"]);
        with_store(&mut c);
        c.env("BPV_BACKUP_PASSPHRASE", passphrase).output().unwrap()
    };
    let wrong_to = env.dir.join("wrong").to_string_lossy().into_owned();
    let wrong = restore(&wrong_to, "not the passphrase");
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("passphrase"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    assert!(!Path::new(&wrong_to).exists(), "a refused restore left files behind");
    let to = env.dir.join("restored").to_string_lossy().into_owned();
    let ok = restore(&to, "backup passphrase 42");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["credentials"], serde_json::json!(["openai"]));
    let mut get = Command::new(env!("CARGO_BIN_EXE_bpv"));
    get.arg("--library").arg(&to).arg("--data-dir").arg(&env.data).args(["creds", "get", "openai", "--reveal"]);
    with_store(&mut get);
    let got = get.output().unwrap();
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "sk-cli-value-5a4b3c2d1e0f");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn prune_dry_run_says_what_would_go_and_changes_nothing() {
    let env = Env::new();
    let mut ids = Vec::new();
    for i in 0..2 {
        env.write(&format!("Blueprints/personal/d{i}.blueprint.yaml"), &yaml(&format!("D{i}")));
        ids.push(env.json(&["backup", "--to", &env.repo()])["id"].as_str().unwrap().to_owned());
    }
    let preview = env.json(&["prune", "--from", &env.repo(), "--keep-last", "1", "--dry-run"]);
    assert_eq!(preview["removed"], serde_json::json!([ids[0]]));
    assert_eq!(preview["kept"], serde_json::json!([ids[1]]));
    let list = env.json(&["backups", "--from", &env.repo()]);
    assert_eq!(list.as_array().unwrap().len(), 2, "a dry run forgot a snapshot");
}

/// `restore --to` refuses a folder inside the library or the data dir, whether it exists
/// yet or not (the engine's check, shared with the app), and writes nothing.
#[test]
fn restore_to_a_folder_inside_the_library_or_the_data_dir_is_refused() {
    let env = Env::new();
    env.write("Blueprints/personal/a.blueprint.yaml", &yaml("Alpha"));
    let id = env.json(&["backup", "--to", &env.repo()])["id"].as_str().unwrap().to_owned();
    let lib_before = tree(&env.library);
    fs::create_dir_all(env.library.join("Exports/empty")).unwrap();
    let targets = [
        env.library.join("Restored/here"),
        env.library.join("Exports/empty"),
        env.data.join("libraries/restored"),
        // Through `..` or a link to the library: the same folder.
        env.dir.join("link-to-library/new"),
    ];
    std::os::unix::fs::symlink(&env.library, env.dir.join("link-to-library")).unwrap();
    for target in &targets {
        let o = env.run(&["--json", "restore", &id, "--from", &env.repo(), "--to", target.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "restore into {} was accepted", target.display());
        assert!(err.contains("inside"), "{}: {err}", target.display());
        assert!(!target.exists() || fs::read_dir(target).unwrap().next().is_none(), "{} was written", target.display());
    }
    let mut lib_after = tree(&env.library);
    lib_after.retain(|k, _| !k.starts_with("Exports/empty"));
    assert_eq!(lib_after, lib_before);
    assert!(!env.library.join("Restored").exists());
    // Outside both: restored.
    let out = env.dir.join("restored");
    env.json(&["restore", &id, "--from", &env.repo(), "--to", out.to_str().unwrap()]);
    assert!(out.join("Blueprints/personal/a.blueprint.yaml").is_file());
}
