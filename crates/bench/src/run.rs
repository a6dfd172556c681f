//! The benchmark runner: measures the engine (in process) and the `bpv` CLI (as a
//! user's process) on a generated corpus, against raw baselines measured in the same
//! run on the same disk, and reports what it measured — nothing is hard-coded.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use bpv_engine::index::{ListQuery, SearchQuery, Sort};
use bpv_engine::library::{BlueprintSave, Library, OpenOptions};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};

use bpv_bench::corpus::{MANIFEST_NAME, Manifest};
use bpv_bench::stats::{Summary, ms, summarize, time};

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub corpus: PathBuf,
    /// Must be empty or absent; default: a fresh temporary folder next to the corpus.
    pub data_dir: Option<PathBuf>,
    pub out: Option<PathBuf>,
    /// The `bpv` binary; default: next to this executable.
    pub bpv: Option<PathBuf>,
    /// Timed engine queries per kind (load, list, search, …).
    pub queries: usize,
    /// Fresh `bpv` processes (and in-process opens) for open-to-first-page.
    pub process_runs: usize,
    /// Durable saves (and as many raw baseline writes).
    pub saves: usize,
    /// `rg` runs per word set.
    pub rg_runs: usize,
}

/// One line of the results table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub metric: String,
    pub goal: String,
    pub measured: String,
    /// "met", "missed", "p50 only", or "" when there is no goal.
    pub verdict: String,
    pub command: String,
}

struct Checks {
    failures: Vec<String>,
    warnings: Vec<String>,
}

impl Checks {
    fn fail(&mut self, msg: String) {
        eprintln!("FAILED CHECK: {msg}");
        self.failures.push(msg);
    }
    fn warn(&mut self, msg: String) {
        eprintln!("warning: {msg}");
        self.warnings.push(msg);
    }
}

fn eng<T>(what: &str, r: bpv_engine::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn verdict_max(value: f64, goal: f64) -> String {
    if value <= goal { "met".into() } else { "missed".into() }
}

fn verdict_latency(s: &Summary, goal_ms: f64) -> String {
    if s.p99_ms <= goal_ms {
        "met".into()
    } else if s.p50_ms <= goal_ms {
        "p50 only".into()
    } else {
        "missed".into()
    }
}

fn fmt_ms(v: f64) -> String {
    if v < 1.0 {
        format!("{:.3} ms", v)
    } else if v < 100.0 {
        format!("{:.2} ms", v)
    } else {
        format!("{:.0} ms", v)
    }
}

fn p50_p99(s: &Summary) -> String {
    format!("p50 {} · p99 {}", fmt_ms(s.p50_ms), fmt_ms(s.p99_ms))
}

/// Peak resident set of this process (VmHWM), in MB.
fn peak_rss_mb() -> Option<f64> {
    let s = fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Largest peak RSS among waited-for children so far, in KB.
fn children_max_rss_kb() -> Option<u64> {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) == 0 { Some(ru.ru_maxrss as u64) } else { None }
    }
}

/// `bpv-bench maxrss -- CMD ARGS…`: run a command and print its peak RSS and wall time
/// as JSON. The runner measures child processes through this small helper because a
/// child spawned straight from the (large) runner process inherits the runner's peak
/// RSS in `ru_maxrss` until it execs.
pub fn maxrss_helper(cmd: &[String]) -> Result<(), String> {
    let (prog, args) = cmd.split_first().ok_or("maxrss: no command")?;
    let t = Instant::now();
    let status = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    let millis = ms(t.elapsed());
    println!("{}", json!({"maxrss_kb": children_max_rss_kb(), "success": status.success(), "millis": millis}));
    Ok(())
}

/// Run `cmd` under the maxrss helper: (peak RSS MB, wall ms).
fn measure_rss(cmd: &Command) -> Result<(f64, f64), String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot locate bpv-bench: {e}"))?;
    let mut helper = Command::new(me);
    helper.arg("maxrss").arg("--").arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            helper.env(k, v);
        }
    }
    let out = helper.stdin(Stdio::null()).output().map_err(|e| format!("maxrss helper: {e}"))?;
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("maxrss helper output: {e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    if v["success"] != json!(true) {
        return Err(format!(
            "{:?} failed under the maxrss helper: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok((v["maxrss_kb"].as_f64().unwrap_or(f64::NAN) / 1024.0, v["millis"].as_f64().unwrap_or(f64::NAN)))
}

/// User + system CPU time of this process so far, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return f64::NAN;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn machine_info(path: &Path) -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let mem_total = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb / 1024);
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "mem_total_mb": mem_total,
        "fs": fs_type(path),
        "kernel": fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default(),
        "mount": mount_of(path),
    })
}

fn fs_type(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return "unknown".into() };
    // SAFETY: statfs writes into the struct we pass; c is NUL-terminated.
    let t = unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        if libc::statfs(c.as_ptr(), &mut s) != 0 {
            return "unknown".into();
        }
        s.f_type as i64
    };
    match t {
        0xEF53 => "ext4".into(),
        0x9123683E => "btrfs".into(),
        0x58465342 => "xfs".into(),
        0x01021994 => "tmpfs".into(),
        0x794c7630 => "overlayfs".into(),
        0x65735546 => "fuse".into(),
        0x6969 => "nfs".into(),
        other => format!("0x{other:x}"),
    }
}

/// The device and mount point holding `path`, from /proc/self/mountinfo (longest match).
fn mount_of(path: &Path) -> String {
    let Ok(abs) = fs::canonicalize(path) else { return String::new() };
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let mp = f[4];
        if abs.starts_with(mp) && best.as_ref().is_none_or(|(l, _)| mp.len() > *l) {
            let sep = f.iter().position(|x| *x == "-").unwrap_or(0);
            let fstype = f.get(sep + 1).copied().unwrap_or("");
            let dev = f.get(sep + 2).copied().unwrap_or("");
            best = Some((mp.len(), format!("{dev} on {mp} ({fstype})")));
        }
    }
    best.map(|(_, s)| s).unwrap_or_default()
}

/// All blueprint paths in the corpus, relative and `/`-separated, sorted.
fn blueprint_paths(root: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))? {
            let e = e.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            } else if name.ends_with(".blueprint.yaml") {
                let rel = p.strip_prefix(root).map_err(|e| e.to_string())?;
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A valid ~2 KB blueprint for the save benchmark.
fn save_payload(i: usize) -> Vec<u8> {
    let mut s = format!(
        "name: Bench save {i}\nid: 00000000-0000-4000-8000-{i:012}\ndescription: Durable save benchmark, revision {i}. Fetch new leads and send a summary to the sales team.\nversion: \"1.0.{i}\"\ntags:\n  - bench\n  - crm\nauthor: bpv-bench\nnodes:\n"
    );
    let mut k = 0;
    while s.len() < 1850 {
        s.push_str(&format!(
            "  - id: step_{k}\n    type: http.request\n    position: {{x: {}, y: 100}}\n    parameters:\n      url: https://api.example.com/v1/leads?page={k}\n      notes: Step {k} of the benchmark blueprint, revision {i}.\n",
            100 + 220 * k
        ));
        k += 1;
    }
    s.push_str("edges:\n");
    for j in 1..k {
        s.push_str(&format!("  - from: step_{}\n    to: step_{j}\n", j - 1));
    }
    s.into_bytes()
}

/// The raw durable-write baseline: temp file + fsync + rename + fsync of the folder.
fn raw_durable_write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

struct Timed {
    samples: Vec<f64>,
}

impl Timed {
    fn new() -> Timed {
        Timed { samples: Vec::new() }
    }
    fn push(&mut self, v: f64) {
        self.samples.push(v);
    }
    fn summary(&self) -> Summary {
        summarize(&self.samples)
    }
}

fn same_device(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev(),
        _ => false,
    }
}

fn run_rg(word: &str, corpus: &Path) -> Result<(f64, Vec<String>), String> {
    let t = Instant::now();
    let out = Command::new("rg")
        .args(["-l", "-i", word])
        .arg(corpus)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run rg (apt-get install -y ripgrep): {e}"))?;
    let elapsed = ms(t.elapsed());
    // rg exits 1 when nothing matched.
    if !(out.status.success() || out.status.code() == Some(1)) {
        return Err(format!("rg failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let files = String::from_utf8_lossy(&out.stdout).lines().map(|l| l.to_owned()).collect();
    Ok((elapsed, files))
}

pub fn run(opts: &RunOptions) -> Result<bool, String> {
    let corpus = fs::canonicalize(&opts.corpus).map_err(|e| format!("corpus {}: {e}", opts.corpus.display()))?;
    let manifest = Manifest::load(&corpus)?;
    let mut checks = Checks { failures: Vec::new(), warnings: Vec::new() };
    let mut rows: Vec<Row> = Vec::new();
    let mut results = serde_json::Map::new();
    let mut rng = ChaCha8Rng::seed_from_u64(manifest.seed ^ 0xbe7c);

    let bpv = match &opts.bpv {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("cannot locate bpv-bench: {e}"))?
            .parent()
            .map(|d| d.join("bpv"))
            .ok_or("cannot locate the bpv binary; pass --bpv")?,
    };
    if !bpv.is_file() {
        return Err(format!("no bpv binary at {} (cargo build --release -p bpv, or pass --bpv)", bpv.display()));
    }
    let rg_version = Command::new("rg")
        .arg("--version")
        .output()
        .map_err(|e| format!("ripgrep is needed for the baseline (apt-get install -y ripgrep): {e}"))?;
    let rg_version = String::from_utf8_lossy(&rg_version.stdout).lines().next().unwrap_or("").to_owned();

    let parent = corpus.parent().unwrap_or(Path::new("/")).to_path_buf();
    let _data_guard;
    let data_dir = match &opts.data_dir {
        Some(d) => {
            if d.exists() && fs::read_dir(d).map_err(|e| format!("{}: {e}", d.display()))?.next().is_some() {
                return Err(format!(
                    "--data-dir {} is not empty; the reindex must start from an empty data dir",
                    d.display()
                ));
            }
            fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
            d.clone()
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix(".bpv-bench-data-")
                .tempdir_in(&parent)
                .map_err(|e| format!("temp data dir: {e}"))?;
            let p = t.path().to_path_buf();
            _data_guard = t;
            p
        }
    };
    let load_start = loadavg();
    let paths = blueprint_paths(&corpus)?;
    if paths.len() != manifest.count {
        checks.fail(format!(
            "the corpus has {} blueprint files but its manifest says {} (was it modified?)",
            paths.len(),
            manifest.count
        ));
    }
    let broken: HashSet<&str> = manifest.broken.iter().map(|b| b.path.as_str()).collect();
    let valid_paths: Vec<&String> = paths.iter().filter(|p| !broken.contains(p.as_str())).collect();
    let n = manifest.count;
    eprintln!(
        "corpus {} — {} blueprints ({} broken), data dir {}",
        corpus.display(),
        n,
        manifest.broken.len(),
        data_dir.display()
    );

    let open_opts = |reconcile: bool| OpenOptions {
        root: corpus.clone(),
        data_dir: Some(data_dir.clone()),
        create: false,
        reconcile,
    };

    // 1. Full index build from an empty data dir (Library::open builds it), then an
    //    explicit full reindex (what `bpv reindex` does).
    eprintln!("[1/8] full reindex …");
    let (open_fresh_ms, lib) = time(|| Library::open(open_opts(false)));
    let lib = eng("opening the library on an empty data dir", lib)?;
    let cpu0 = cpu_seconds();
    let (reindex_ms, report) = time(|| lib.reindex(None));
    let reindex_cpu = cpu_seconds() - cpu0;
    let report = eng("reindex", report)?;
    let rss_after_reindex = peak_rss_mb();
    let rate = report.indexed as f64 / (reindex_ms / 1e3);
    let first_rate = n as f64 / (open_fresh_ms / 1e3);
    if report.indexed != n {
        checks.fail(format!("reindex indexed {} files, the corpus has {n}", report.indexed));
    }
    if report.invalid.len() != manifest.broken.len() {
        checks.fail(format!(
            "reindex reported {} invalid files, the manifest lists {} broken ones",
            report.invalid.len(),
            manifest.broken.len()
        ));
    }
    let reported: HashSet<&str> = report.invalid.iter().map(|i| i.path.as_str()).collect();
    for b in &manifest.broken {
        if !reported.contains(b.path.as_str()) {
            checks.fail(format!("broken file not reported invalid ({}): {}", b.kind, b.path));
        }
    }
    for i in &report.invalid {
        if !broken.contains(i.path.as_str()) {
            checks.fail(format!("valid file reported invalid: {} — {}", i.path, i.error));
        }
    }
    results.insert(
        "reindex".into(),
        json!({
            "first_open_ms": open_fresh_ms, "first_open_files_per_s": first_rate,
            "reindex_ms": reindex_ms, "engine_millis": report.millis, "indexed": report.indexed,
            "invalid": report.invalid.len(), "expected_invalid": manifest.broken.len(), "files_per_s": rate,
            "cpu_s": reindex_cpu, "files_per_cpu_s": report.indexed as f64 / reindex_cpu,
            "peak_rss_mb_after_reindex": rss_after_reindex,
        }),
    );
    rows.push(Row {
        metric: "Full reindex".into(),
        goal: "≥ 15,000 files/s".into(),
        measured: format!(
            "{:.0} files/s ({} files in {:.2} s, {:.2} CPU-s = {:.0} files/CPU-s; {} invalid, expected {})",
            rate,
            report.indexed,
            reindex_ms / 1e3,
            reindex_cpu,
            report.indexed as f64 / reindex_cpu,
            report.invalid.len(),
            manifest.broken.len()
        ),
        verdict: if rate >= 15_000.0 { "met".into() } else { "missed".into() },
        command: "Library::reindex(None) (= bpv reindex)".into(),
    });
    rows.push(Row {
        metric: "First open, empty data dir".into(),
        goal: "—".into(),
        measured: format!("{:.2} s ({:.0} files/s, builds the index)", open_fresh_ms / 1e3, first_rate),
        verdict: String::new(),
        command: "Library::open(empty data dir)".into(),
    });
    drop(lib);

    // 1b. Where reindex time goes: reading every file, and reading + parsing with the
    //     engine's own blueprint analyser, on all cores (rayon), without the index.
    let (read_ms, read_bytes) =
        time(|| paths.par_iter().map(|p| fs::read(corpus.join(p)).map(|b| b.len()).unwrap_or(0)).sum::<usize>());
    let cpu0 = cpu_seconds();
    let (parse_ms, parsed_invalid) = time(|| {
        paths
            .par_iter()
            .filter(|p| {
                fs::read(corpus.join(p.as_str()))
                    .map(|b| bpv_engine::blueprint::analyse(&b).error.is_some())
                    .unwrap_or(true)
            })
            .count()
    });
    let parse_cpu = cpu_seconds() - cpu0;
    results.insert(
        "reindex_components".into(),
        json!({"read_all_ms": read_ms, "read_bytes": read_bytes, "read_files_per_s": n as f64 / (read_ms / 1e3),
               "read_and_analyse_ms": parse_ms, "read_and_analyse_cpu_s": parse_cpu, "read_and_analyse_files_per_s": n as f64 / (parse_ms / 1e3), "analyse_invalid": parsed_invalid,
               "index_write_ms_estimate": reindex_ms - parse_ms}),
    );
    rows.push(Row {
        metric: "Reindex part: read every blueprint".into(),
        goal: "—".into(),
        measured: format!(
            "{:.0} files/s ({:.2} s, {:.0} MB)",
            n as f64 / (read_ms / 1e3),
            read_ms / 1e3,
            read_bytes as f64 / 1e6
        ),
        verdict: String::new(),
        command: "fs::read, rayon".into(),
    });
    rows.push(Row {
        metric: "Reindex part: read + parse/validate".into(),
        goal: "—".into(),
        measured: format!(
            "{:.0} files/s ({:.2} s, {:.2} CPU-s = {:.0} files/CPU-s; the rest of reindex, ≈ {:.2} s, is mostly the index write)",
            n as f64 / (parse_ms / 1e3),
            parse_ms / 1e3,
            parse_cpu,
            n as f64 / parse_cpu,
            (reindex_ms - parse_ms) / 1e3
        ),
        verdict: String::new(),
        command: "fs::read + blueprint::analyse, rayon".into(),
    });

    // 2. Open to first page, in process and as a user's process.
    eprintln!("[2/8] open to first page …");
    let first_page = ListQuery { sort: Sort::Name, limit: 50, ..Default::default() };
    let mut inproc = Timed::new();
    for _ in 0..opts.process_runs {
        let t = Instant::now();
        let lib = eng("open", Library::open(open_opts(true)))?;
        let page = eng("list", lib.list(&first_page))?;
        inproc.push(ms(t.elapsed()));
        if page.items.len() != 50.min(n) {
            checks.fail(format!("first page has {} items", page.items.len()));
        }
    }
    let mut procs = Timed::new();
    let bpv_cmd = |lib_dir: &Path| {
        let mut c = Command::new(&bpv);
        c.arg("--library")
            .arg(lib_dir)
            .args(["--json", "list", "--limit", "50"])
            .env("BPV_DATA_DIR", &data_dir)
            .stdin(Stdio::null());
        c
    };
    for i in 0..=opts.process_runs {
        let t = Instant::now();
        let out = bpv_cmd(&corpus).output().map_err(|e| format!("cannot run {}: {e}", bpv.display()))?;
        let elapsed = ms(t.elapsed());
        if !out.status.success() {
            return Err(format!("bpv list failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        let items = serde_json::from_slice::<Value>(&out.stdout).ok().and_then(|v| v.as_array().map(|a| a.len()));
        if items != Some(50.min(n)) {
            checks.fail(format!("bpv list --limit 50 printed {items:?} items"));
        }
        if i > 0 {
            procs.push(elapsed); // run 0 warms up
        }
    }
    let (bpv_rss, _) = measure_rss(&bpv_cmd(&corpus)).map(|(m, t)| (Some(m), t)).unwrap_or_else(|e| {
        eprintln!("warning: {e}");
        (None, f64::NAN)
    });
    // `bpv reindex` as a process: peak memory of a full rebuild, and its wall time.
    let mut reindex_cmd = Command::new(&bpv);
    reindex_cmd.arg("--library").arg(&corpus).args(["--json", "reindex"]).env("BPV_DATA_DIR", &data_dir);
    let (reindex_rss, reindex_proc_ms) = measure_rss(&reindex_cmd)?;
    results.insert("bpv_reindex_process".into(), json!({"peak_rss_mb": reindex_rss, "wall_ms": reindex_proc_ms, "files_per_s": n as f64 / (reindex_proc_ms / 1e3)}));
    rows.push(Row {
        metric: "Full reindex, `bpv reindex` process".into(),
        goal: "≥ 15,000 files/s".into(),
        measured: format!(
            "{:.0} files/s ({:.2} s wall, open + reconcile + rebuild)",
            n as f64 / (reindex_proc_ms / 1e3),
            reindex_proc_ms / 1e3
        ),
        verdict: verdict_max(15_000.0, n as f64 / (reindex_proc_ms / 1e3)),
        command: "bpv --library DIR --json reindex".into(),
    });
    let (s_in, s_proc) = (inproc.summary(), procs.summary());
    results.insert("open_first_page_in_process".into(), json!(s_in));
    results.insert("open_first_page_process".into(), json!(s_proc));
    results.insert("bpv_list_max_rss_mb".into(), json!(bpv_rss));
    rows.push(Row {
        metric: format!("Open → first page, `bpv` process ({} runs)", s_proc.n),
        goal: "≤ 150 ms".into(),
        measured: p50_p99(&s_proc),
        verdict: verdict_latency(&s_proc, 150.0),
        command: "bpv --library DIR --json list --limit 50 (index built, reconcile on)".into(),
    });
    rows.push(Row {
        metric: format!("Open → first page, in process ({} runs)", s_in.n),
        goal: "≤ 150 ms".into(),
        measured: p50_p99(&s_in),
        verdict: verdict_latency(&s_in, 150.0),
        command: "Library::open(reconcile) + list(limit 50, by name)".into(),
    });

    let lib = eng("open", Library::open(open_opts(true)))?;

    // 3. Load.
    eprintln!("[3/8] load …");
    let mut load = Timed::new();
    let mut item = Timed::new();
    let reads = opts.queries.max(200) * 5;
    for _ in 0..reads {
        let p = valid_paths[rng.random_range(0..valid_paths.len())];
        let (t, r) = time(|| lib.read(p));
        eng("read", r)?;
        load.push(t);
        let (t, r) = time(|| lib.item(p));
        eng("item", r)?;
        item.push(t);
    }
    let (s_load, s_item) = (load.summary(), item.summary());
    results.insert("load".into(), json!(s_load));
    results.insert("item_lookup".into(), json!(s_item));
    rows.push(Row {
        metric: format!("Load ({} random blueprints)", s_load.n),
        goal: "p99 ≤ 1 ms".into(),
        measured: p50_p99(&s_load),
        verdict: verdict_max(s_load.p99_ms, 1.0),
        command: "Library::read(path)".into(),
    });
    rows.push(Row {
        metric: "Item lookup".into(),
        goal: "—".into(),
        measured: p50_p99(&s_item),
        verdict: String::new(),
        command: "Library::item(path)".into(),
    });

    // 4. List pages.
    eprintln!("[4/8] list …");
    let mut list_first = Timed::new();
    let mut list_name = Timed::new();
    let mut list_modified = Timed::new();
    let mut list_tag = Timed::new();
    let top_tag = manifest.tags.first().map(|t| t.tag.clone()).unwrap_or_else(|| "crm".into());
    let top_tag_count = manifest.tags.first().map(|t| t.count).unwrap_or(0);
    for _ in 0..opts.queries {
        let (t, r) = time(|| lib.list(&first_page));
        eng("list", r)?;
        list_first.push(t);
        let q = ListQuery {
            sort: Sort::Name,
            offset: rng.random_range(0..n.saturating_sub(50).max(1)),
            limit: 50,
            ..Default::default()
        };
        let (t, r) = time(|| lib.list(&q));
        let page = eng("list", r)?;
        if page.items.len() != 50.min(n) {
            checks.fail(format!("list at offset {} returned {} items", q.offset, page.items.len()));
        }
        list_name.push(t);
        let q = ListQuery {
            sort: Sort::Modified,
            offset: rng.random_range(0..n.saturating_sub(50).max(1)),
            limit: 50,
            ..Default::default()
        };
        let (t, r) = time(|| lib.list(&q));
        eng("list", r)?;
        list_modified.push(t);
        let q = ListQuery {
            tags: vec![top_tag.clone()],
            offset: rng.random_range(0..top_tag_count.saturating_sub(50).max(1)),
            limit: 50,
            ..Default::default()
        };
        let (t, r) = time(|| lib.list(&q));
        eng("list", r)?;
        list_tag.push(t);
    }
    for (key, label, t, cmd) in [
        ("list_first_page", "First list page (offset 0, by name)", &list_first, "list(limit 50)".to_owned()),
        (
            "list_random_page_name",
            "List page, random offset, by name",
            &list_name,
            "list(offset R, limit 50, sort name)".to_owned(),
        ),
        (
            "list_random_page_modified",
            "List page, random offset, by modified",
            &list_modified,
            "list(offset R, limit 50, sort modified)".to_owned(),
        ),
        (
            "list_random_page_tag",
            "List page, random offset, tag filter",
            &list_tag,
            format!("list(tag {top_tag}, offset R, limit 50)"),
        ),
    ] {
        let s = t.summary();
        results.insert(key.into(), json!(s));
        rows.push(Row {
            metric: format!("{label} ({} queries)", s.n),
            goal: "p99 ≤ 5 ms".into(),
            measured: p50_p99(&s),
            verdict: verdict_max(s.p99_ms, 5.0),
            command: cmd,
        });
    }

    // 5. Search.
    eprintln!("[5/8] search …");
    let rare: Vec<&bpv_bench::corpus::RareWord> = manifest.rare_words.iter().collect();
    let (mut planted, mut found, mut extra) = (0usize, 0usize, 0usize);
    let mut missed: Vec<String> = Vec::new();
    for rw in &rare {
        let page =
            eng("search", lib.search(&SearchQuery { text: rw.word.clone(), limit: 1000, ..Default::default() }))?;
        let got: BTreeSet<&str> = page.hits.iter().map(|h| h.item.path.as_str()).collect();
        let want: BTreeSet<&str> = rw.paths.iter().map(|p| p.as_str()).collect();
        planted += want.len();
        found += want.intersection(&got).count();
        extra += got.difference(&want).count();
        for p in want.difference(&got) {
            missed.push(format!("{} in {p}", rw.word));
        }
    }
    // A planted word that search misses (or finds where it was not planted) is a wrong answer,
    // not a slow one: it fails the run, the smoke run in CI included.
    if found != planted || extra > 0 {
        checks.fail(format!(
            "rare-word search found {found} of {planted} planted occurrences ({extra} unexpected hits); missed: {}",
            missed.iter().take(10).cloned().collect::<Vec<_>>().join("; ")
        ));
    }
    results.insert(
        "rare_word_recall".into(),
        json!({"planted": planted, "found": found, "unexpected": extra, "missed": missed}),
    );
    rows.push(Row {
        metric: format!("Search recall, {} planted rare words", rare.len()),
        goal: "every planted file found".into(),
        measured: format!("{found} of {planted} files found, {extra} unexpected"),
        verdict: if found == planted && extra == 0 { "met".into() } else { "missed".into() },
        command: "search(\"WORD\", limit 1000) vs corpus.json".into(),
    });
    let mut common_totals = Vec::new();
    for cw in &manifest.common_words {
        let page = eng("search", lib.search(&SearchQuery { text: cw.word.clone(), limit: 1, ..Default::default() }))?;
        common_totals.push(json!({"word": cw.word, "engine_total": page.total, "manifest_files": cw.files, "manifest_valid_files": cw.valid_files}));
        if page.total < cw.valid_files * 9 / 10 {
            checks.warn(format!(
                "search {:?} matched {} files; {} valid files contain the word",
                cw.word, page.total, cw.valid_files
            ));
        }
    }
    results.insert("common_word_totals".into(), json!(common_totals));
    let mut search_sets: Vec<(&str, Vec<String>, Timed)> = vec![
        ("rare", rare.iter().map(|r| r.word.clone()).collect(), Timed::new()),
        ("common", manifest.common_words.iter().map(|c| c.word.clone()).collect(), Timed::new()),
    ];
    for (_, words, timed) in search_sets.iter_mut() {
        let mut order: Vec<String> = (0..opts.queries).map(|i| words[i % words.len()].clone()).collect();
        order.shuffle(&mut rng);
        for w in order {
            let q = SearchQuery { text: w, limit: 20, ..Default::default() };
            let (t, r) = time(|| lib.search(&q));
            eng("search", r)?;
            timed.push(t);
        }
    }
    // Two common words together, as people type them.
    let mut two = Timed::new();
    let cws: Vec<&str> = manifest.common_words.iter().map(|c| c.word.as_str()).collect();
    for _ in 0..opts.queries {
        let a = cws[rng.random_range(0..cws.len())];
        let b = cws[rng.random_range(0..cws.len())];
        let q = SearchQuery { text: format!("{a} {b}"), limit: 20, ..Default::default() };
        let (t, r) = time(|| lib.search(&q));
        eng("search", r)?;
        two.push(t);
    }
    let s_rare = search_sets[0].2.summary();
    let s_common = search_sets[1].2.summary();
    let s_two = two.summary();
    results.insert("search_rare".into(), json!(s_rare));
    results.insert("search_common".into(), json!(s_common));
    results.insert("search_two_common".into(), json!(s_two));
    rows.push(Row {
        metric: format!("Search, rare words ({} queries, limit 20)", s_rare.n),
        goal: "p99 ≤ 20 ms".into(),
        measured: p50_p99(&s_rare),
        verdict: verdict_max(s_rare.p99_ms, 20.0),
        command: "search(\"WORD\", limit 20)".into(),
    });
    rows.push(Row {
        metric: format!("Search, common words ({} queries, limit 20)", s_common.n),
        goal: "p99 ≤ 20 ms".into(),
        measured: p50_p99(&s_common),
        verdict: verdict_max(s_common.p99_ms, 20.0),
        command: format!("search(\"WORD\", limit 20), WORD ∈ {{{}}}", cws.join(", ")),
    });
    rows.push(Row {
        metric: format!("Search, two common words ({} queries)", s_two.n),
        goal: "p99 ≤ 20 ms".into(),
        measured: p50_p99(&s_two),
        verdict: verdict_max(s_two.p99_ms, 20.0),
        command: "search(\"WORD WORD\", limit 20)".into(),
    });

    // 6. Tag counts.
    eprintln!("[6/8] tag counts …");
    let mut tags_t = Timed::new();
    let mut last = Vec::new();
    for _ in 0..opts.queries.clamp(20, 100) {
        let (t, r) = time(|| lib.index().tag_counts(None));
        last = eng("tag counts", r)?;
        tags_t.push(t);
    }
    let engine_count =
        |tag: &str| last.iter().find(|t| t.tag.eq_ignore_ascii_case(tag)).map(|t| t.count as usize).unwrap_or(0);
    let differs = |want: &[bpv_bench::corpus::TagCount]| -> Vec<String> {
        want.iter()
            .filter_map(|mt| {
                let got = engine_count(&mt.tag);
                (got != mt.count).then(|| format!("{}: engine {got}, manifest {}", mt.tag, mt.count))
            })
            .collect()
    };
    let (vs_valid, vs_all) = (differs(&manifest.tags), differs(&manifest.tags_including_invalid));
    let tag_basis = if vs_valid.is_empty() {
        "valid files"
    } else if vs_all.is_empty() {
        "valid files + invalid files with a tags list"
    } else {
        checks.fail(format!(
            "tag counts differ from the manifest for {} tags: {}",
            vs_valid.len(),
            vs_valid.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        ));
        "mismatch"
    };
    let mismatched = if vs_valid.is_empty() || vs_all.is_empty() { Vec::new() } else { vs_valid };
    let s_tags = tags_t.summary();
    results.insert(
        "tag_counts".into(),
        json!({"timing": s_tags, "tags": last.len(), "counts_match": tag_basis, "mismatches": mismatched}),
    );
    rows.push(Row {
        metric: format!("Tag counts, whole library ({} runs)", s_tags.n),
        goal: "—".into(),
        measured: format!("{} ({} tags; counts match the manifest: {tag_basis})", p50_p99(&s_tags), last.len()),
        verdict: String::new(),
        command: "index().tag_counts(None)".into(),
    });

    // 7. ripgrep baseline over the same files.
    eprintln!("[7/8] rg baseline …");
    let _ = run_rg("warmup", &corpus)?;
    let mut rg_results = serde_json::Map::new();
    for (set, words, engine_s) in [
        ("rare", rare.iter().map(|r| r.word.clone()).collect::<Vec<_>>(), &s_rare),
        ("common", cws.iter().map(|w| w.to_string()).collect::<Vec<_>>(), &s_common),
    ] {
        let mut t = Timed::new();
        for i in 0..opts.rg_runs {
            let w = &words[i % words.len()];
            let (ms_, files) = run_rg(w, &corpus)?;
            t.push(ms_);
            if set == "rare" {
                let hits = files.iter().filter(|f| !f.ends_with(MANIFEST_NAME)).count();
                let want = manifest.rare_words.iter().find(|r| &r.word == w).map(|r| r.files).unwrap_or(0);
                if hits != want {
                    // The baseline must answer the same question, or its timing compares nothing.
                    checks.fail(format!("rg -l -i {w} found {hits} files, expected {want}"));
                }
            }
        }
        let s = t.summary();
        let ratio_p50 = s.p50_ms / engine_s.p50_ms;
        let ratio_p99 = s.p99_ms / engine_s.p99_ms;
        rg_results.insert(set.into(), json!({"timing": s, "ratio_p50": ratio_p50, "ratio_p99": ratio_p99}));
        rows.push(Row {
            metric: format!("Search vs rg, {set} words ({} rg runs)", s.n),
            goal: "≥ 20× faster than rg -l".into(),
            measured: format!("rg {} → {:.0}× (p50), {:.0}× (p99 vs p99)", p50_p99(&s), ratio_p50, ratio_p99),
            verdict: verdict_max(20.0, ratio_p50),
            command: "rg -l -i WORD DIR".into(),
        });
    }
    results.insert("rg".into(), Value::Object(rg_results));

    // 8. Durable saves against the raw baseline, interleaved, on the same disk.
    eprintln!("[8/8] durable saves …");
    let raw_dir = tempfile::Builder::new()
        .prefix(".bpv-bench-raw-")
        .tempdir_in(&parent)
        .map_err(|e| format!("raw baseline dir: {e}"))?;
    let same_disk = same_device(raw_dir.path(), &corpus);
    if !same_disk {
        checks.warn("the raw baseline folder is not on the library's device".into());
    }
    let save_folder = format!("Blueprints/personal/bpv-bench-saves-{}", std::process::id());
    let distinct = 20usize;
    let save_paths: Vec<String> =
        (0..distinct).map(|k| format!("{save_folder}/bench save {k}.blueprint.yaml")).collect();
    let mut eng_t = Timed::new();
    let mut raw_t = Timed::new();
    let mut payload_bytes = 0usize;
    let save_result: Result<(), String> = (|| {
        for i in 0..opts.saves {
            let bytes = save_payload(i);
            payload_bytes = bytes.len();
            let k = i % distinct;
            let raw_first = i % 2 == 0;
            let do_raw = |t: &mut Timed| -> Result<(), String> {
                let (ms_, r) =
                    time(|| raw_durable_write(raw_dir.path(), &format!("bench save {k}.blueprint.yaml"), &bytes));
                r.map_err(|e| format!("raw write: {e}"))?;
                t.push(ms_);
                Ok(())
            };
            if raw_first {
                do_raw(&mut raw_t)?;
            }
            let (ms_, r) = time(|| lib.save_blueprint(&save_paths[k], &bytes, &BlueprintSave::default()));
            eng("save_blueprint", r)?;
            eng_t.push(ms_);
            if !raw_first {
                do_raw(&mut raw_t)?;
            }
        }
        Ok(())
    })();
    // Clean up the saved files whatever happened.
    let folder_abs = corpus.join(&save_folder);
    let _ = fs::remove_dir_all(&folder_abs);
    let _ = lib.refresh(&save_paths);
    save_result?;
    let (s_eng, s_raw) = (eng_t.summary(), raw_t.summary());
    let save_ratio = s_eng.p50_ms / s_raw.p50_ms;
    results.insert(
        "durable_save".into(),
        json!({"engine": s_eng, "raw": s_raw, "ratio_p50": save_ratio, "ratio_p99": s_eng.p99_ms / s_raw.p99_ms, "payload_bytes": payload_bytes, "distinct_paths": distinct, "same_device": same_disk}),
    );
    rows.push(Row {
        metric: format!("Durable save ({} saves of {} B, {distinct} paths)", s_eng.n, payload_bytes),
        goal: "p50 ≤ 2× raw".into(),
        measured: format!(
            "{} vs raw {} → {:.2}× (p50), {:.2}× (p99)",
            p50_p99(&s_eng),
            p50_p99(&s_raw),
            save_ratio,
            s_eng.p99_ms / s_raw.p99_ms
        ),
        verdict: verdict_max(save_ratio, 2.0),
        command: "save_blueprint(path, yaml, default) vs write tmp+fsync+rename+fsync dir".into(),
    });

    let rss = peak_rss_mb();
    results.insert("bench_process_peak_rss_mb".into(), json!(rss));
    rows.push(Row {
        metric: "Memory: `bpv list` process peak RSS".into(),
        goal: "≤ 150 MB".into(),
        measured: bpv_rss.map(|m| format!("{m:.0} MB")).unwrap_or_else(|| "n/a".into()),
        verdict: bpv_rss.map(|m| verdict_max(m, 150.0)).unwrap_or_default(),
        command: "bpv --json list --limit 50, ru_maxrss via wait".into(),
    });
    rows.push(Row {
        metric: "Memory: `bpv reindex` process peak RSS".into(),
        goal: "≤ 150 MB".into(),
        measured: format!("{reindex_rss:.0} MB"),
        verdict: verdict_max(reindex_rss, 150.0),
        command: "bpv --json reindex, ru_maxrss via wait".into(),
    });
    rows.push(Row {
        metric: "Memory: engine in this process, peak RSS (after reindex / at end)".into(),
        goal: "≤ 150 MB".into(),
        measured: format!(
            "{} / {}",
            rss_after_reindex.map(|m| format!("{m:.0} MB")).unwrap_or_else(|| "n/a".into()),
            rss.map(|m| format!("{m:.0} MB")).unwrap_or_else(|| "n/a".into())
        ),
        verdict: rss.map(|m| verdict_max(m, 150.0)).unwrap_or_default(),
        command: "VmHWM of bpv-bench (engine + the runner's path list)".into(),
    });
    drop(lib);

    // Report.
    let table = markdown_table(&rows);
    println!("{table}");
    println!("\nLoad average (1/5/15 min) at start: {load_start}; at end: {}", loadavg());
    if !checks.failures.is_empty() {
        println!("\n**{} failed check(s):**", checks.failures.len());
        for f in checks.failures.iter().take(30) {
            println!("- {f}");
        }
    }
    if !checks.warnings.is_empty() {
        println!("\nWarnings:");
        for w in &checks.warnings {
            println!("- {w}");
        }
    }
    let report_json = json!({
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "machine": machine_info(&corpus),
        "rg": rg_version,
        "bpv": bpv,
        "corpus": {
            "dir": corpus, "count": manifest.count, "seed": manifest.seed, "broken": manifest.broken.len(),
            "companions": manifest.companions, "folders": manifest.folders, "total_bytes": manifest.total_bytes,
        },
        "loadavg_start": load_start,
        "loadavg_end": loadavg(),
        "settings": {"queries": opts.queries, "process_runs": opts.process_runs, "saves": opts.saves, "rg_runs": opts.rg_runs},
        "rows": rows,
        "results": results,
        "failures": checks.failures,
        "warnings": checks.warnings,
    });
    let text = serde_json::to_string_pretty(&report_json).map_err(|e| e.to_string())?;
    match &opts.out {
        Some(p) => fs::write(p, text + "\n").map_err(|e| format!("cannot write {}: {e}", p.display()))?,
        None => println!("\n```json\n{text}\n```"),
    }
    Ok(checks.failures.is_empty())
}

pub fn markdown_table(rows: &[Row]) -> String {
    let mut s = String::from("| metric | goal | measured | verdict | command |\n|---|---|---|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | `{}` |\n",
            r.metric,
            r.goal,
            r.measured,
            r.verdict,
            r.command.replace('|', "\\|")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_payload_is_about_2kb_and_valid_looking() {
        let p = save_payload(7);
        assert!((1800..2600).contains(&p.len()), "{}", p.len());
        assert!(String::from_utf8(p).unwrap().starts_with("name: Bench save 7\n"));
    }

    #[test]
    fn raw_durable_write_replaces_the_file() {
        let d = tempfile::tempdir().unwrap();
        raw_durable_write(d.path(), "a.yaml", b"one").unwrap();
        raw_durable_write(d.path(), "a.yaml", b"two").unwrap();
        assert_eq!(fs::read(d.path().join("a.yaml")).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
