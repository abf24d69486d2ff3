//! Starting nodes on a database, and the few requests the tests repeat.

use std::time::Duration;

use acs_identity_testkit::{TestResponse, TestServer};

pub(crate) use acs_identity_testkit::{identity_path, issue_path, revoke_path};

/// A service node on the PostgreSQL database at `url`, on its own ephemeral ports.
pub(crate) async fn node(url: &str) -> TestServer {
    TestServer::start_on_database(url).await
}

/// Asserts ACS's 503: the error envelope, `ServiceUnavailable`, and `Retry-After`.
pub(crate) fn assert_unavailable(r: &TestResponse) {
    r.assert_error(503, "ServiceUnavailable");
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
}

/// Max, median and count of a set of durations, for the printed figures.
pub(crate) fn summary(mut d: Vec<Duration>) -> String {
    d.sort_unstable();
    let max = d.last().copied().unwrap_or_default();
    let p50 = d.get(d.len() / 2).copied().unwrap_or_default();
    let p99 = d.get(d.len() * 99 / 100).copied().unwrap_or_default();
    format!("n={} p50={p50:?} p99={p99:?} max={max:?}", d.len())
}
