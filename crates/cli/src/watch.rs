//! `bpv watch`: keep the library's index live and print every change as one JSON line
//! on stdout (`{"kind","path","old_path"?,"origin","hash"?}`), flushed at once, until
//! SIGINT/SIGTERM/SIGHUP. State changes and reconciles go to stderr.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bpv_engine::watch::{WatchMode, WatchNotice, WatchOptions, Watcher, WatcherState};
use bpv_engine::{Error, Result};
use serde_json::json;

#[derive(clap::Args)]
pub struct WatchArgs {
    /// Safety-net full rescan every SECS seconds (0: never).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    rescan_secs: u64,
    /// Poll the folder instead of using kernel notifications.
    #[arg(long)]
    poll: bool,
    /// How often to look when polling, in milliseconds.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    poll_ms: u64,
}

pub fn run(cli: &crate::Cli, args: &WatchArgs) -> Result<()> {
    // Block the stop signals before any thread exists, so every thread inherits the
    // mask and the main thread receives them with sigwait.
    let signals = block_signals()?;
    let lib = Arc::new(crate::open(cli, false)?);
    let opts = WatchOptions {
        rescan_interval: (args.rescan_secs > 0).then(|| Duration::from_secs(args.rescan_secs)),
        poll_interval: Duration::from_millis(args.poll_ms.max(50)),
        force_polling: args.poll.then(|| "polling was asked for (--poll)".to_owned()),
        ..Default::default()
    };
    let json = cli.json;
    let watcher = Watcher::start(Arc::clone(&lib), opts, move |n| match n {
        WatchNotice::Change(ev) => {
            let mut out = std::io::stdout().lock();
            let ok = serde_json::to_writer(&mut out, &ev).is_ok() && writeln!(out).is_ok() && out.flush().is_ok();
            if !ok {
                // Whoever read our output is gone: stop cleanly.
                stop_self();
            }
        }
        WatchNotice::State(s) => report_state(json, &s),
        WatchNotice::Resynced { reason, report } => {
            if json {
                eprintln!("{}", json!({ "resynced": reason, "report": report }));
            } else {
                eprintln!(
                    "bpv: reconciled ({reason}): {} added, {} changed, {} removed",
                    report.added, report.changed, report.removed
                );
            }
        }
    })?;
    let state = watcher.state();
    if json {
        eprintln!("{}", json!({ "watching": lib.root(), "state": state }));
    } else {
        eprintln!("bpv: watching {} ({})", lib.root().display(), describe(&state));
    }
    wait_for_signal(&signals);
    watcher.stop();
    Ok(())
}

fn describe(s: &WatcherState) -> String {
    let mode = match s.mode {
        WatchMode::Watching => "watching",
        WatchMode::Polling => "polling",
        WatchMode::Degraded => "degraded",
        WatchMode::Stopped => "stopped",
    };
    let mut out = mode.to_owned();
    if let Some(r) = &s.reason {
        out.push_str(&format!(": {r}"));
    }
    if let Some(a) = &s.advice {
        out.push_str(&format!(" — {a}"));
    }
    out
}

fn report_state(json: bool, s: &WatcherState) {
    if json {
        eprintln!("{}", json!({ "state": s }));
    } else {
        eprintln!("bpv: {}", describe(s));
    }
}

fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

fn block_signals() -> Result<libc::sigset_t> {
    let set = stop_signals();
    // SAFETY: `set` is initialised; the old mask is not needed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(Error::Io {
            context: "cannot set up signal handling".into(),
            source: std::io::Error::from_raw_os_error(rc),
        });
    }
    Ok(set)
}

fn wait_for_signal(set: &libc::sigset_t) {
    loop {
        let mut sig = 0;
        // SAFETY: `set` is initialised and `sig` is a valid out-pointer.
        if unsafe { libc::sigwait(set, &mut sig) } == 0 {
            return;
        }
    }
}

fn stop_self() {
    // SAFETY: sends SIGTERM to this process, which the main thread is waiting for.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGTERM);
    }
}
