//! When an automatic backup is due: a pure function of the settings and a clock, so
//! the app's timer holds no logic a test cannot drive with a fake clock.

/// What the scheduler knows at one tick (all times in Unix seconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScheduleState {
    /// Seconds between automatic backups; `None`: automatic backups are off.
    pub interval: Option<u64>,
    /// The last successful backup (any trigger).
    pub last_success: Option<u64>,
    /// The last failed automatic backup, if it failed after the last success.
    pub last_failure: Option<u64>,
    /// How long to wait after a failure before trying again.
    pub retry_after: u64,
}

/// Whether an automatic backup should start at `now`.
///
/// Due when on, and either never done or `interval` has passed since the last success;
/// but not within `retry_after` of a failure (a missing drive is not hammered every
/// tick). A clock set back (last success in the future) counts as due: waiting for the
/// clock to catch up could skip backups for a long time.
pub fn backup_due(s: &ScheduleState, now: u64) -> bool {
    let Some(interval) = s.interval else { return false };
    if s.last_failure.is_some_and(|failed| now >= failed && now - failed < s.retry_after) {
        return false;
    }
    match s.last_success {
        None => true,
        Some(last) if last > now => true,
        Some(last) => now - last >= interval,
    }
}

/// The automatic-backup timer: a thread that, every `tick`, reads the schedule
/// (`state`: `None` while there is nothing to back up, e.g. no library open) and runs
/// `run` (returns whether the backup succeeded) when [`backup_due`] says so. It
/// remembers the last failure itself, for the retry delay. Stops when dropped.
pub struct ScheduleTimer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ScheduleTimer {
    pub fn spawn<S, R>(tick: std::time::Duration, state: S, mut run: R) -> std::io::Result<ScheduleTimer>
    where
        S: Fn() -> Option<ScheduleState> + Send + 'static,
        R: FnMut() -> bool + Send + 'static,
    {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new().name("backup-schedule".into()).spawn(move || {
            let mut last_failure = None;
            // Sleep in short steps so a stop is noticed quickly even with a long tick.
            let step = tick.min(std::time::Duration::from_millis(100));
            loop {
                let mut slept = std::time::Duration::ZERO;
                while slept < tick {
                    if stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(step);
                    slept += step;
                }
                let Some(mut s) = state() else { continue };
                s.last_failure = last_failure;
                if backup_due(&s, unix_now()) {
                    last_failure = if run() { None } else { Some(unix_now()) };
                }
            }
        })?;
        Ok(ScheduleTimer { stop, thread: Some(thread) })
    }
}

impl Drop for ScheduleTimer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3600;

    fn daily() -> ScheduleState {
        ScheduleState { interval: Some(24 * HOUR), retry_after: 15 * 60, ..Default::default() }
    }

    #[test]
    fn off_is_never_due() {
        let s = ScheduleState { interval: None, ..daily() };
        assert!((0..100).all(|h| !backup_due(&s, h * HOUR)));
    }

    #[test]
    fn a_fake_clock_over_three_days_gives_one_backup_a_day() {
        let mut s = daily();
        let start = 1_800_000_000;
        let mut fired = Vec::new();
        // One tick a minute for three days; a backup that is due succeeds at once.
        for minute in 0..(3 * 24 * 60) {
            let now = start + minute * 60;
            if backup_due(&s, now) {
                fired.push(now);
                s.last_success = Some(now);
            }
        }
        assert_eq!(fired, vec![start, start + 24 * HOUR, start + 48 * HOUR]);
    }

    #[test]
    fn a_failure_waits_before_retrying_then_retries() {
        let start = 1_800_000_000;
        let mut s = ScheduleState { last_success: Some(start - 25 * HOUR), ..daily() };
        assert!(backup_due(&s, start));
        s.last_failure = Some(start);
        assert!(!backup_due(&s, start + 60));
        assert!(!backup_due(&s, start + 14 * 60));
        assert!(backup_due(&s, start + 15 * 60));
    }

    #[test]
    fn not_due_before_the_interval_and_due_after_a_clock_set_back() {
        let start = 1_800_000_000;
        let s = ScheduleState { last_success: Some(start), ..daily() };
        assert!(!backup_due(&s, start + 24 * HOUR - 1));
        assert!(backup_due(&s, start + 24 * HOUR));
        assert!(backup_due(&s, start - HOUR), "a clock set back must not stop backups");
    }
}
