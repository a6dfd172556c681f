//! `bpv watch` in a real child process: the JSON lines it prints while the test edits
//! files, what other `bpv` processes see meanwhile, and a clean exit on SIGTERM/SIGINT.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Env {
    _tmp: tempfile::TempDir,
    library: PathBuf,
    data: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let env = Env { library: tmp.path().join("lib"), data: tmp.path().join("data"), _tmp: tmp };
        assert!(env.run(&["init"]).status.success());
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
        assert!(out.status.success(), "bpv {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn write(&self, rel: &str, body: &str) {
        let p = self.library.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }
}

struct Watch {
    child: Child,
    lines: Receiver<String>,
}

impl Watch {
    fn start(env: &Env, extra: &[&str]) -> Watch {
        let mut args = vec!["watch"];
        args.extend_from_slice(extra);
        let mut child = env.cmd(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Ready once it says so on stderr.
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        assert!(first.contains("watching"), "unexpected first stderr line: {first:?}");
        std::thread::spawn(move || for _ in stderr.lines() {});
        Watch { child, lines }
    }

    /// Parsed JSON lines until one matches `kind` and `path`.
    fn until(&self, kind: &str, path: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("no {kind} {path}; got {got:#?}"));
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            got.push(v.clone());
            if v["kind"] == kind && v["path"] == path {
                return got;
            }
        }
    }

    fn signal(&mut self, sig: i32) -> std::process::ExitStatus {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "bpv watch did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const A: &str = "Blueprints/personal/a.blueprint.yaml";
const B: &str = "Blueprints/shared/b.blueprint.yaml";

#[test]
fn watch_prints_json_lines_for_outside_edits_and_keeps_the_shared_index_live() {
    let env = Env::new();
    let mut w = Watch::start(&env, &[]);

    let info = env.json(&["info"]);
    assert_eq!(info["watcher"]["state"], "watching", "{info}");
    assert_eq!(info["watcher"]["pid"], w.child.id());

    env.write(A, "name: Alpha\nnodes: []\n");
    let got = w.until("created", A);
    let ev = got.last().unwrap();
    assert_eq!(ev["origin"], "outside");
    assert_eq!(ev["hash"].as_str().unwrap().len(), 64);
    assert!(ev.get("old_path").is_none(), "{ev}");
    // Another bpv process reads the index the watcher keeps: the new file is there.
    let list = env.json(&["list"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["name"], "Alpha");

    // Editor-style save: temp file, then rename over.
    env.write("Blueprints/personal/.a.blueprint.yaml.swp", "x");
    env.write("Blueprints/personal/a.blueprint.yaml.tmp", "name: Alpha 2\n");
    fs::rename(env.library.join("Blueprints/personal/a.blueprint.yaml.tmp"), env.library.join(A)).unwrap();
    let got = w.until("modified", A);
    assert!(got.iter().all(|v| v["path"] == A), "{got:#?}");
    assert_eq!(env.json(&["show", A, "--meta"])["name"], "Alpha 2");

    fs::rename(env.library.join(A), env.library.join(B)).unwrap();
    let got = w.until("renamed", B);
    assert_eq!(got.last().unwrap()["old_path"], A);

    // A save by another bpv process is an outside change for this watcher.
    let out = env.cmd(&["save", A]).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().and_then(|mut c| {
        use std::io::Write;
        c.stdin.take().unwrap().write_all(b"name: Saved by bpv\n")?;
        c.wait()
    });
    assert!(out.unwrap().success());
    // (`created`: this watcher never saw A at its new content before.)
    let got = w.until("created", A);
    assert_eq!(got.last().unwrap()["origin"], "outside");

    fs::remove_file(env.library.join(B)).unwrap();
    w.until("removed", B);
    assert!(env.json(&["list"]).as_array().unwrap().iter().all(|i| i["path"] != B));

    let st = w.signal(libc::SIGTERM);
    assert!(st.success(), "exit status {st:?}");
    assert_eq!(env.json(&["info"])["watcher"]["state"], "not running");
    assert!(
        !fs::read_dir(env.data.join("libraries")).unwrap().flatten().any(|d| d.path().join("watcher.json").exists())
    );
}

#[test]
fn watch_polls_when_asked_and_stops_cleanly_on_ctrl_c() {
    let env = Env::new();
    let mut w = Watch::start(&env, &["--poll", "--poll-ms", "150"]);
    let info = env.json(&["info"]);
    assert_eq!(info["watcher"]["state"], "polling", "{info}");
    assert!(info["watcher"]["reason"].as_str().unwrap().contains("--poll"));
    env.write(A, "name: Polled\n");
    w.until("created", A);
    let st = w.signal(libc::SIGINT);
    assert!(st.success(), "exit status {st:?}");
    assert_eq!(env.json(&["info"])["watcher"]["state"], "not running");
}
