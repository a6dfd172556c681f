//! Backups the way the app takes them: with the library's watcher running, so the
//! change journal names what changed and the library folder is not walked, and with
//! `verified_after` (the app verifies each snapshot whole right after; that verify is
//! not timed here: `bpv verify` figures are its cost).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bpv_engine::backup::{self, BackupOptions, BackupReport};
use bpv_engine::library::{Library, OpenOptions};
use bpv_engine::watch::{WatchOptions, Watcher};
use serde_json::json;

pub struct WatchedBackupOptions {
    pub library: PathBuf,
    pub data_dir: PathBuf,
    pub repo: PathBuf,
    pub reps: usize,
    pub change_ratio: f64,
}

fn one(lib: &Library, repo: &Path) -> Result<(f64, BackupReport), String> {
    let t = Instant::now();
    let opts = BackupOptions { repo: Some(repo.to_path_buf()), verified_after: true, ..Default::default() };
    let r = backup::backup(lib, &opts).map_err(|e| e.to_string())?;
    Ok((t.elapsed().as_secs_f64() * 1e3, r))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn blueprints(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            blueprints(&p, out);
        } else if p.to_string_lossy().ends_with(".blueprint.yaml") {
            out.push(p);
        }
    }
}

/// Prints one JSON line: the priming backup, the unchanged ones (median), and one
/// after `change_ratio` of the blueprints had a line appended.
pub fn run(o: &WatchedBackupOptions) -> Result<(), String> {
    let mut open = OpenOptions::new(&o.library);
    open.data_dir = Some(o.data_dir.clone());
    let lib = Arc::new(Library::open(open).map_err(|e| e.to_string())?);
    let opts = WatchOptions { state_file: false, ..WatchOptions::default() };
    let _watcher = Watcher::start(Arc::clone(&lib), opts, |_| {}).map_err(|e| e.to_string())?;

    let (prime_ms, prime) = one(&lib, &o.repo)?;
    let mut unchanged = Vec::new();
    let mut journal = true;
    let mut last = prime;
    for _ in 0..o.reps.max(1) {
        let (ms, r) = one(&lib, &o.repo)?;
        journal &= r.journal;
        unchanged.push(ms);
        last = r;
    }
    let unchanged_new_bytes = last.new_bytes;

    let mut names = Vec::new();
    blueprints(&o.library.join("Blueprints"), &mut names);
    names.sort();
    let n = ((names.len() as f64 * o.change_ratio).round() as usize).max(1);
    let step = (names.len() / n).max(1);
    let stamp = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    for p in names.iter().step_by(step).take(n) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(p).map_err(|e| e.to_string())?;
        writeln!(f, "\n# changed {stamp}").map_err(|e| e.to_string())?;
    }
    let (changed_ms, changed) = one(&lib, &o.repo)?;
    println!(
        "{}",
        json!({
            "files": last.files,
            "prime_ms": prime_ms,
            "unchanged_ms": median(unchanged),
            "unchanged_journal": journal,
            "unchanged_new_bytes": unchanged_new_bytes,
            "changed_files": n,
            "changed_ms": changed_ms,
            "changed_journal": changed.journal,
            "changed_read_files": changed.read_files,
            "changed_new_bytes": changed.new_bytes,
            "changed_list_bytes": changed.list_bytes,
        })
    );
    Ok(())
}
