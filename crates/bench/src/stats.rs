//! Timing statistics.

use std::time::{Duration, Instant};

use serde::Serialize;

/// Summary of a set of timings, in milliseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Nearest-rank percentile of sorted values (`q` in 0..=100).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn summarize(samples_ms: &[f64]) -> Summary {
    let mut v = samples_ms.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Summary {
        n,
        min_ms: v.first().copied().unwrap_or(f64::NAN),
        p50_ms: percentile(&v, 50.0),
        p90_ms: percentile(&v, 90.0),
        p99_ms: percentile(&v, 99.0),
        max_ms: v.last().copied().unwrap_or(f64::NAN),
        mean_ms: if n == 0 { f64::NAN } else { v.iter().sum::<f64>() / n as f64 },
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Time one call, in milliseconds.
pub fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let t = Instant::now();
    let r = f();
    (ms(t.elapsed()), r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(|x| x as f64).collect();
        let s = summarize(&v);
        assert_eq!((s.p50_ms, s.p90_ms, s.p99_ms, s.min_ms, s.max_ms), (50.0, 90.0, 99.0, 1.0, 100.0));
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        let s = summarize(&[5.0, 1.0, 3.0]);
        assert_eq!(s.p50_ms, 3.0);
        assert_eq!(s.p99_ms, 5.0);
    }
}
