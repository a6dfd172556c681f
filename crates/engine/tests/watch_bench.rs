//! Watcher figures for docs/BENCHMARKS.md (not a timed test; ignored by default):
//!
//! ```sh
//! BPV_WATCH_BENCH_FILES=100000 cargo test --release -p bpv-engine --test watch_bench -- --ignored --nocapture
//! ```
//!
//! 1. outside edit → index updated → event delivered, over 300 edits of existing files;
//! 2. a burst of 10,000 new files (written as fast as one thread can) until the index
//!    has them all and every event was delivered;
//! 3. CPU and RSS of this process (library open + watcher) while idle-watching for 30 s.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use bpv_engine::library::{Library, OpenOptions};
use bpv_engine::watch::{ChangeKind, WatchNotice, WatchOptions, Watcher};

fn body(i: usize, rev: usize) -> String {
    format!(
        "name: Workflow {i} rev {rev}\ndescription: Fetch records and post a digest to the team channel\ntags: [crm, t{}]\nauthor: bench\nnodes:\n  - id: fetch\n    type: http.request\n    parameters:\n      url: https://api.example.com/items/{i}\n  - id: summarise\n    type: llm.prompt\n    parameters:\n      prompt: Summarise these records for the morning digest\n  - id: post\n    type: slack.post\n    parameters:\n      channel: '#ops'\nedges:\n  - {{from: fetch, to: summarise}}\n  - {{from: summarise, to: post}}\n",
        i % 50
    )
}

fn rel(i: usize) -> String {
    format!("Blueprints/shared/team{}/folder{}/wf{i}.blueprint.yaml", i % 20, (i / 20) % 50)
}

fn proc_cpu_ticks() -> u64 {
    let s = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    // fields 14 and 15 (utime, stime) are at 11 and 12 after the `)`.
    f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_mib() -> f64 {
    let s = fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(p, body).unwrap();
}

#[test]
#[ignore]
fn watcher_figures() {
    let n: usize = std::env::var("BPV_WATCH_BENCH_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("lib");
    let t = Instant::now();
    for i in 0..n {
        write(&root, &rel(i), &body(i, 0));
    }
    println!("library: {n} blueprints written in {:.1} s", t.elapsed().as_secs_f64());
    let mut o = OpenOptions::new(&root);
    o.data_dir = Some(tmp.path().join("data"));
    o.create = true;
    let t = Instant::now();
    let lib = Arc::new(Library::open(o).unwrap());
    println!("open + index: {:.1} s, RSS {:.0} MiB", t.elapsed().as_secs_f64(), rss_mib());

    let (tx, rx) = channel();
    let t = Instant::now();
    let watcher = Watcher::start(Arc::clone(&lib), WatchOptions::default(), move |n| {
        if let WatchNotice::Change(e) = n {
            let _ = tx.send((Instant::now(), e));
        }
    })
    .unwrap();
    // Let the start settle.
    std::thread::sleep(Duration::from_secs(3));
    println!("RSS with the watcher running: {:.0} MiB", rss_mib());
    println!(
        "watch start (recursive inotify over the library): {:.0} ms, state {:?}",
        t.elapsed().as_secs_f64() * 1e3,
        watcher.state().mode
    );

    // 1. Latency of single outside edits.
    let edits = 300;
    let mut lat = Vec::with_capacity(edits);
    for k in 0..edits {
        let i = (k * 7919) % n;
        let r = rel(i);
        let t0 = Instant::now();
        write(&root, &r, &body(i, k + 1));
        loop {
            let (at, e) = rx.recv_timeout(Duration::from_secs(10)).expect("event");
            if e.path == r && e.kind == ChangeKind::Modified {
                // The index has it when the event arrives.
                assert_eq!(lib.index().get(&r).unwrap().unwrap().name, format!("Workflow {i} rev {}", k + 1));
                lat.push((at - t0).as_secs_f64() * 1e3);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "edit → index → event over {edits} edits: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        lat[lat.len() - 1]
    );

    // 2. A burst of 10k new files.
    let burst = 10_000;
    let t0 = Instant::now();
    for i in 0..burst {
        write(&root, &format!("Blueprints/personal/burst/d{}/b{i}.blueprint.yaml", i % 100), &body(i, 0));
    }
    let written = t0.elapsed();
    let mut created = 0;
    while created < burst {
        let (_, e) = rx.recv_timeout(Duration::from_secs(60)).expect("burst events");
        if e.kind == ChangeKind::Created {
            created += 1;
        }
    }
    let settled = t0.elapsed();
    assert_eq!(lib.info().unwrap().stats.items as usize, n + burst);
    println!(
        "burst of {burst} files: written in {:.2} s, index + all events settled {:.2} s after the first write ({:.2} s after the last)",
        written.as_secs_f64(),
        settled.as_secs_f64(),
        (settled - written).as_secs_f64()
    );

    // 3. Idle.
    std::thread::sleep(Duration::from_secs(2));
    println!("RSS after the burst: {:.0} MiB", rss_mib());
    // SAFETY: malloc_trim only returns free heap memory to the system.
    unsafe { libc::malloc_trim(0) };
    println!("RSS after malloc_trim (memory still in use): {:.0} MiB", rss_mib());
    let ticks0 = proc_cpu_ticks();
    let idle = Duration::from_secs(30);
    let t0 = Instant::now();
    std::thread::sleep(idle);
    let ticks = proc_cpu_ticks() - ticks0;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    println!(
        "idle watching {} blueprints for {:.0} s: CPU {:.3}% of one core, RSS {:.0} MiB",
        n + burst,
        t0.elapsed().as_secs_f64(),
        ticks as f64 / hz / t0.elapsed().as_secs_f64() * 100.0,
        rss_mib()
    );
    let t = Instant::now();
    watcher.stop();
    println!("stop: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
}
