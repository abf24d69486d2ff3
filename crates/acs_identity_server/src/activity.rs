//! In-process activity counters: requests per operation, tokens issued, errors and latency,
//! in 5-second intervals over the last five minutes. `GET /activity` (an extension of
//! this service) serves them to the console's charts.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Length of one interval.
pub const INTERVAL: Duration = Duration::from_secs(5);
/// Intervals kept.
pub const KEPT: usize = 60;
/// Latency histogram buckets: four per power of two of microseconds.
const LATENCY_BUCKETS: usize = 128;

#[derive(Default)]
struct Bucket {
    index: u64,
    requests: u64,
    errors: u64,
    tokens: u64,
    by_operation: HashMap<&'static str, u64>,
    latency: Vec<u64>,
}

/// The counters of one node.
pub struct Activity {
    started: Instant,
    ring: Mutex<VecDeque<Bucket>>,
}

impl std::fmt::Debug for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activity").finish_non_exhaustive()
    }
}

impl Default for Activity {
    fn default() -> Self {
        Activity { started: Instant::now(), ring: Mutex::new(VecDeque::with_capacity(KEPT)) }
    }
}

fn latency_bucket(elapsed: Duration) -> usize {
    let micros = elapsed.as_micros().max(1) as f64;
    ((micros.log2() * 4.0) as usize).min(LATENCY_BUCKETS - 1)
}

fn bucket_upper_millis(bucket: usize) -> f64 {
    2f64.powf((bucket + 1) as f64 / 4.0) / 1000.0
}

/// One interval as served.
#[derive(Debug, Serialize, PartialEq)]
pub struct Sample {
    /// Requests answered.
    pub requests: u64,
    /// Of which answered with a status of 400 or more.
    pub errors: u64,
    /// Access tokens issued (creates with a token, issues, exchanges).
    #[serde(rename = "tokensIssued")]
    pub tokens_issued: u64,
    /// The 99th percentile of the handling time (an upper bound, within 19 %).
    #[serde(rename = "p99Millis")]
    pub p99_millis: f64,
}

/// What `GET /activity` answers.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// Seconds per sample.
    #[serde(rename = "intervalSeconds")]
    pub interval_seconds: u64,
    /// Oldest first; the last one is the interval in progress.
    pub samples: Vec<Sample>,
    /// Requests per interval of each operation seen, aligned with `samples`.
    #[serde(rename = "byOperation")]
    pub by_operation: std::collections::BTreeMap<&'static str, Vec<u64>>,
}

impl Activity {
    fn index(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.started).as_secs()) / INTERVAL.as_secs()
    }

    /// Counts one answered request.
    pub fn record(&self, operation: &'static str, status: u16, tokens: u64, elapsed: Duration) {
        let index = self.index(Instant::now());
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.back().is_none_or(|b| b.index != index) {
            if ring.len() == KEPT {
                ring.pop_front();
            }
            ring.push_back(Bucket {
                index,
                latency: vec![0; LATENCY_BUCKETS],
                ..Bucket::default()
            });
        }
        let Some(bucket) = ring.back_mut() else { return };
        bucket.requests += 1;
        bucket.errors += u64::from(status >= 400);
        bucket.tokens += tokens;
        *bucket.by_operation.entry(operation).or_default() += 1;
        bucket.latency[latency_bucket(elapsed)] += 1;
    }

    /// The last [`KEPT`] intervals up to now, empty ones included.
    pub fn snapshot(&self) -> Snapshot {
        let now = self.index(Instant::now());
        let first = now.saturating_sub(KEPT as u64 - 1);
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let mut samples = Vec::new();
        let mut by_operation = std::collections::BTreeMap::<&'static str, Vec<u64>>::new();
        for b in ring.iter().filter(|b| b.index >= first) {
            for name in b.by_operation.keys() {
                by_operation.entry(name).or_default();
            }
        }
        for index in first..=now {
            let bucket = ring.iter().find(|b| b.index == index);
            samples.push(match bucket {
                None => Sample { requests: 0, errors: 0, tokens_issued: 0, p99_millis: 0.0 },
                Some(b) => Sample {
                    requests: b.requests,
                    errors: b.errors,
                    tokens_issued: b.tokens,
                    p99_millis: p99(&b.latency, b.requests),
                },
            });
            for (name, series) in &mut by_operation {
                series.push(bucket.and_then(|b| b.by_operation.get(name).copied()).unwrap_or(0));
            }
        }
        Snapshot { interval_seconds: INTERVAL.as_secs(), samples, by_operation }
    }
}

fn p99(histogram: &[u64], total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let rank = total - total / 100;
    let mut seen = 0;
    for (i, n) in histogram.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return bucket_upper_millis(i);
        }
    }
    bucket_upper_millis(LATENCY_BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_the_current_interval() {
        let a = Activity::default();
        a.record("create_identity", 201, 1, Duration::from_millis(2));
        a.record("create_identity", 401, 0, Duration::from_millis(1));
        a.record("issue_access_token", 200, 1, Duration::from_millis(3));
        let s = a.snapshot();
        assert_eq!(s.interval_seconds, 5);
        let last = s.samples.last().unwrap();
        assert_eq!((last.requests, last.errors, last.tokens_issued), (3, 1, 2));
        assert!(last.p99_millis >= 3.0 && last.p99_millis < 3.0 * 1.2, "{}", last.p99_millis);
        assert_eq!(s.by_operation["create_identity"].last(), Some(&2));
        assert_eq!(s.by_operation["issue_access_token"].len(), s.samples.len());
    }

    #[test]
    fn p99_of_a_hundred_requests_ignores_the_slowest() {
        let mut h = vec![0; LATENCY_BUCKETS];
        h[latency_bucket(Duration::from_millis(1))] = 99;
        h[latency_bucket(Duration::from_secs(1))] = 1;
        assert!(p99(&h, 100) < 2.0);
    }
}
