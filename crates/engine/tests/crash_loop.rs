//! Crash loop: a child process (this test binary, re-run as `crash_child`) saves,
//! batches, deletes, imports and backs up in a loop, printing `BEGIN …` before each call
//! and `ACK …` after it returns; the parent SIGKILLs it at a random moment, then checks:
//!
//! - every acknowledged blueprint is present with its acknowledged content (or, for the
//!   call in flight, with the content that call was writing), every acknowledged delete
//!   stays deleted (unless in flight);
//! - no blueprint file is empty or torn (each one the child writes ends with a marker);
//! - no temp file is named like a blueprint;
//! - the reopened library's index equals a fresh reindex;
//! - every backup snapshot verifies (re-reading all data).
//!
//! CI runs a short loop: `cargo test -p bpv-engine --test crash_loop` (30 kills);
//! `scripts/crash-loop.sh 1000` runs a long one (`BPV_CRASH_KILLS`, `BPV_CRASH_SEED`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bpv_engine::Key;
use bpv_engine::backup::{self, BackupOptions, CancelToken, Repo};
use bpv_engine::index::ListQuery;
use bpv_engine::library::{BlueprintSave, Library, OpenOptions};
use bpv_engine::store::{BatchOp, SaveOptions, content_hash};
use bpv_engine::transfer::ImportOptions;

const END_MARK: &str = "# end of blueprint\n";
const KEYS: usize = 24;

fn open(root: &Path, data: &Path) -> Library {
    let mut o = OpenOptions::new(root);
    o.data_dir = Some(data.to_path_buf());
    o.create = true;
    Library::open(o).unwrap()
}

fn body(key: usize, seq: u64, pad: usize) -> Vec<u8> {
    let mut s = format!("name: Flow {key}\ndescription: revision {seq}\nnodes:\n");
    for n in 0..(1 + pad % 40) {
        s.push_str(&format!("  - id: n{n}\n    type: step\n    note: {}\n", "x".repeat(pad % 200)));
    }
    s.push_str(END_MARK);
    s.into_bytes()
}

fn rel_of(key: usize) -> String {
    format!("Blueprints/crash/k{:02}/flow-{key}.blueprint.yaml", key % 5)
}

/// xorshift: deterministic per seed, no extra dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The child's workload; runs until killed. Not a test on its own (returns at once
/// unless the parent set `BPV_CRASH_CHILD`).
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("BPV_CRASH_CHILD") else { return };
    let dir = PathBuf::from(dir);
    let (root, data, repo) = (dir.join("lib"), dir.join("data"), dir.join("repo"));
    let seed: u64 = std::env::var("BPV_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut rng = Rng(seed | 1);
    let lib = open(&root, &data);
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    };
    // On its own line: libtest has already printed `test crash_child ... `.
    say("\nREADY".into());
    let mut seq = seed * 1_000_000;
    loop {
        seq += 1;
        match rng.below(20) {
            0..=9 => {
                let key = rng.below(KEYS as u64) as usize;
                let (rel, bytes) = (rel_of(key), body(key, seq, rng.below(1000) as usize));
                let tags = (rng.below(2) == 0).then(|| vec![format!("t{seq}")]);
                say(format!("BEGIN put {rel} {}", content_hash(&bytes)));
                lib.save_blueprint(&rel, &bytes, &BlueprintSave { tags, ..Default::default() }).unwrap();
                say("ACK".into());
            }
            10..=12 => {
                let mut ops = Vec::new();
                let mut lines = Vec::new();
                let mut seen = BTreeSet::new();
                for _ in 0..3 {
                    let key = rng.below(KEYS as u64) as usize;
                    if !seen.insert(key) {
                        continue;
                    }
                    let (rel, bytes) = (rel_of(key), body(key, seq, rng.below(1000) as usize));
                    lines.push(format!("BEGIN put {rel} {}", content_hash(&bytes)));
                    let options = SaveOptions { tags: vec!["batch".into()], ..Default::default() };
                    ops.push(BatchOp::Put { key: Key::new(&rel).unwrap(), data: bytes, options });
                }
                lines.iter().for_each(|l| say(l.clone()));
                lib.apply_batch(&ops).unwrap();
                say("ACK".into());
            }
            13..=15 => {
                let key = rng.below(KEYS as u64) as usize;
                let rel = rel_of(key);
                if root.join(&rel).exists() {
                    say(format!("BEGIN del {rel}"));
                    lib.delete(&rel).unwrap();
                    say("ACK".into());
                }
            }
            16..=18 => {
                let src = dir.join("incoming").join(format!("in{seq}"));
                fs::create_dir_all(&src).unwrap();
                for n in 0..3 {
                    fs::write(src.join(format!("imp{n}.blueprint.yaml")), body(100 + n, seq, n)).unwrap();
                }
                let opts = ImportOptions::new();
                let plan = lib.import_plan(std::slice::from_ref(&src), &opts, None).unwrap();
                for item in &plan.items {
                    if let Some(t) = &item.target {
                        say(format!("BEGIN put {t} {}", item.hash));
                    }
                }
                lib.import_apply(&plan, &opts, None).unwrap();
                say("ACK".into());
            }
            _ => {
                say("BEGIN backup".into());
                backup::backup(&lib, &BackupOptions { repo: Some(repo.clone()), ..Default::default() }).unwrap();
                say("ACK".into());
            }
        }
    }
}

#[derive(Default)]
struct Expected {
    /// Acknowledged state: Some(hash) present, None deleted.
    acked: BTreeMap<String, Option<String>>,
    /// What the call in flight at the kill may have left instead.
    in_flight: BTreeMap<String, Option<String>>,
}

impl Expected {
    /// Fold a run's output in; returns whether the child got past opening the library.
    fn absorb(&mut self, out: &str) -> bool {
        let mut pending: Vec<(String, Option<String>)> = Vec::new();
        let mut ready = false;
        self.in_flight.clear();
        for line in out.lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["READY"] => ready = true,
                ["BEGIN", "put", rel, hash] => pending.push((rel.to_string(), Some(hash.to_string()))),
                ["BEGIN", "del", rel] => pending.push((rel.to_string(), None)),
                ["ACK"] => self.acked.extend(pending.drain(..)),
                _ => {}
            }
        }
        self.in_flight.extend(pending);
        ready
    }
}

fn check(dir: &Path, exp: &Expected, kill: usize) -> Vec<String> {
    let root = dir.join("lib");
    let mut problems = Vec::new();
    let mut on_disk: BTreeMap<String, String> = BTreeMap::new();
    for e in walkdir::WalkDir::new(&root).into_iter().flatten().filter(|e| e.file_type().is_file()) {
        let rel = e.path().strip_prefix(&root).unwrap().to_string_lossy().into_owned();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains(".bpv-tmp-") {
            if name.ends_with(".blueprint.yaml") {
                problems.push(format!("kill {kill}: temp file named like a blueprint: {rel}"));
            }
            continue;
        }
        let bytes = fs::read(e.path()).unwrap();
        if name.ends_with(".blueprint.yaml") {
            if bytes.is_empty() || !bytes.ends_with(END_MARK.as_bytes()) || !bytes.starts_with(b"name: ") {
                problems.push(format!("kill {kill}: torn or empty blueprint {rel} ({} bytes)", bytes.len()));
            }
            on_disk.insert(rel, content_hash(&bytes));
        } else if name.ends_with(".meta.json") && serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
            problems.push(format!("kill {kill}: torn companion {rel}"));
        }
    }
    for (rel, want) in &exp.acked {
        let have = on_disk.get(rel).cloned();
        let in_flight = exp.in_flight.get(rel);
        if have != *want && in_flight != Some(&have) {
            problems.push(format!(
                "kill {kill}: {rel}: acknowledged {want:?}, on disk {have:?} (in flight: {in_flight:?})"
            ));
        }
    }
    problems
}

fn listing(lib: &Library) -> Vec<(String, String, bool)> {
    let q = ListQuery { limit: 100_000, ..Default::default() };
    let mut v: Vec<_> = lib.list(&q).unwrap().items.into_iter().map(|i| (i.path, i.hash, i.valid)).collect();
    v.sort();
    v
}

#[test]
fn acknowledged_writes_survive_sigkill_at_random_moments() {
    let kills: usize = std::env::var("BPV_CRASH_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let seed: u64 = std::env::var("BPV_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = fs::canonicalize(tmp.path()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(seed | 1);
    let mut exp = Expected::default();
    let mut problems = Vec::new();
    let (mut acks, mut verified, mut killed_mid_call) = (0usize, 0usize, 0usize);
    let start = Instant::now();
    for kill in 1..=kills {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("BPV_CRASH_CHILD", &dir)
            .env("BPV_CRASH_SEED", (seed + kill as u64).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the child to open the library, then let it work a random while.
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        while !first.lines().any(|l| l == "READY") {
            if reader.read_line(&mut first).unwrap() == 0 {
                break;
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(120_000)));
        // SAFETY: kill(2) on our own child's PID, which we have not reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
        child.wait().unwrap();
        let out = first + &rest;
        if !exp.absorb(&out) {
            problems.push(format!("kill {kill}: the child never opened the library"));
            continue;
        }
        acks += out.lines().filter(|l| *l == "ACK").count();
        killed_mid_call += usize::from(out.lines().last().is_some_and(|l| l.starts_with("BEGIN")));
        problems.extend(check(&dir, &exp, kill));
        // The reopened index (after recovery and reconcile) equals a fresh reindex.
        let lib = open(&dir.join("lib"), &dir.join("data"));
        let reopened = listing(&lib);
        lib.reindex(None).unwrap();
        if reopened != listing(&lib) {
            problems.push(format!("kill {kill}: the reopened index differs from a fresh reindex"));
        }
        let integrity = lib.index().integrity_check().unwrap();
        if integrity != "ok" {
            problems.push(format!("kill {kill}: index integrity_check: {integrity}"));
        }
        // After open (a committed batch rolled forward) the same holds, and the call in
        // flight is settled: what it left on disk is the state from now on.
        problems.extend(check(&dir, &exp, kill));
        exp.acked.extend(check_settled(&dir, &exp));
        exp.in_flight.clear();
        if kill % 10 == 0 || kill == kills {
            let repo = dir.join("repo");
            if repo.exists() {
                // Even a kill during the first backup must not block later ones.
                let repo =
                    Repo::open_or_create(&repo).unwrap_or_else(|e| panic!("kill {kill}: repository unusable: {e}"));
                for id in repo.snapshot_ids().unwrap() {
                    match repo.verify(&id, None, &CancelToken::new()) {
                        Ok(r) if r.ok => verified += 1,
                        other => problems.push(format!("kill {kill}: snapshot {id} does not verify: {other:?}")),
                    }
                }
            }
        }
        if problems.len() > 20 {
            break;
        }
    }
    eprintln!(
        "crash loop: {kills} kills, {acks} acknowledged calls, {killed_mid_call} kills with a call in flight, \
         {verified} snapshot verifications, {} blueprints at the end, {:.1} s",
        exp.acked.values().filter(|v| v.is_some()).count(),
        start.elapsed().as_secs_f64()
    );
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// The in-flight call's outcome as it stands on disk after recovery.
fn check_settled(dir: &Path, exp: &Expected) -> Vec<(String, Option<String>)> {
    let root = dir.join("lib");
    exp.in_flight
        .keys()
        .map(|rel| {
            let have = fs::read(root.join(rel)).ok().map(|b| content_hash(&b));
            (rel.clone(), have)
        })
        .collect()
}
