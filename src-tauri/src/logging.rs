//! Logs go to a daily-rotated file in `<data dir>/logs` (the last 7 days are kept) and,
//! for warnings and errors, to stderr. `RUST_LOG` overrides the level (default `info`).

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Keep the guard alive for the life of the app (it flushes on drop).
pub fn init(dir: &Path) -> Option<WorkerGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let appender = std::fs::create_dir_all(dir).ok().and_then(|()| {
        Builder::new()
            .rotation(Rotation::DAILY)
            .filename_prefix("blueprint-vault")
            .filename_suffix("log")
            .max_log_files(7)
            .build(dir)
            .ok()
    });
    match appender {
        Some(appender) => {
            let (file, guard) = tracing_appender::non_blocking(appender);
            let writer = file.and(std::io::stderr.with_max_level(tracing::Level::WARN));
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(writer).try_init();
            Some(guard)
        }
        None => {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
            None
        }
    }
}
