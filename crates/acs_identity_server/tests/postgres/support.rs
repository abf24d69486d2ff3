//! Starting nodes on a database, and the few requests the tests repeat.

use std::sync::Arc;
use std::time::Duration;

use acs_identity_core::SystemClock;
use acs_identity_store::DatabaseUrl;
use acs_identity_testkit::{encode_id, TestResponse, TestServer};
use reqwest::{Method, StatusCode};

/// A service node on the PostgreSQL database at `url`, on its own ephemeral ports.
pub(crate) async fn node(url: &str) -> TestServer {
    let url = DatabaseUrl::new(url);
    TestServer::start_with(move |c| c.database_url = Some(url), Arc::new(SystemClock)).await
}

pub(crate) fn issue_path(id: &str) -> String {
    format!("/identities/{}/:issueAccessToken?api-version=2023-10-01", encode_id(id))
}

pub(crate) fn revoke_path(id: &str) -> String {
    format!("/identities/{}/:revokeAccessTokens?api-version=2023-10-01", encode_id(id))
}

pub(crate) fn identity_path(id: &str, version: &str) -> String {
    format!("/identities/{}?api-version={version}", encode_id(id))
}

/// `POST …/:revokeAccessTokens`, expecting 204.
pub(crate) async fn revoke(node: &TestServer, id: &str) {
    let r = node.request(Method::POST, &revoke_path(id)).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}

/// `DELETE /identities/{id}`, expecting 204.
pub(crate) async fn delete(node: &TestServer, id: &str) {
    let r = node.request(Method::DELETE, &identity_path(id, "2023-10-01")).send().await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
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
