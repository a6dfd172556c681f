use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bpv_bench::corpus::{CorpusOptions, generate};

// The same allocator as `bpv`, so the in-process figures are the CLI's.
#[global_allocator]
static GLOBAL: bpv_alloc::MiMalloc = bpv_alloc::MiMalloc;
mod run;
mod watched_backup;
use run::{RunOptions, run};

#[derive(Parser)]
#[command(name = "bpv-bench", about = "Blueprint Vault benchmarks: generate a corpus, measure the engine and the CLI")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a deterministic library of N blueprints plus a corpus.json manifest.
    Corpus {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 0.01)]
        broken_ratio: f64,
    },
    /// Measure the engine and the bpv CLI on a generated corpus; print a Markdown table.
    Run {
        #[arg(long)]
        corpus: PathBuf,
        /// Empty data dir for the index (default: a fresh temporary one next to the corpus).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Write the JSON report here (default: print it after the table).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The bpv binary (default: next to bpv-bench).
        #[arg(long)]
        bpv: Option<PathBuf>,
        /// Timed engine queries per kind.
        #[arg(long, default_value_t = 300)]
        queries: usize,
        /// Fresh processes / opens for open-to-first-page.
        #[arg(long, default_value_t = 20)]
        process_runs: usize,
        /// Durable saves (and as many raw baseline writes).
        #[arg(long, default_value_t = 300)]
        saves: usize,
        /// rg runs per word set (rare, common).
        #[arg(long, default_value_t = 16)]
        rg_runs: usize,
    },
    /// Backups as the app takes them, with the watcher running (the change journal):
    /// one to prime, --reps unchanged, one after --change-ratio of the blueprints changed.
    WatchedBackup {
        #[arg(long)]
        library: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        repo: PathBuf,
        #[arg(long, default_value_t = 5)]
        reps: usize,
        #[arg(long, default_value_t = 0.01)]
        change_ratio: f64,
    },
    /// (internal) Run a command and print its peak RSS and wall time as JSON.
    #[command(hide = true)]
    Maxrss {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
}

fn main() -> ExitCode {
    bpv_alloc::tune();
    bpv_engine::process::disable_transparent_huge_pages();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Corpus { out, count, seed, broken_ratio } => {
            generate(&CorpusOptions { out, count, seed, broken_ratio }).map(|m| {
                println!("{}", serde_json::json!({"count": m.count, "valid": m.valid, "broken": m.broken.len(), "companions": m.companions, "folders": m.folders, "total_bytes": m.total_bytes}));
            })
        }
        Command::Run { corpus, data_dir, out, bpv, queries, process_runs, saves, rg_runs } => {
            match run(&RunOptions { corpus, data_dir, out, bpv, queries, process_runs, saves, rg_runs }) {
                Ok(true) => Ok(()),
                Ok(false) => Err("some checks failed (see above)".into()),
                Err(e) => Err(e),
            }
        }
        Command::Maxrss { cmd } => run::maxrss_helper(&cmd),
        Command::WatchedBackup { library, data_dir, repo, reps, change_ratio } => {
            watched_backup::run(&watched_backup::WatchedBackupOptions { library, data_dir, repo, reps, change_ratio })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bpv-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
