//! `GET /metrics` (Prometheus), `/readyz` and `/healthz`: the exposition parsed as
//! Prometheus would, its figures moved by load, and where it is served.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acs_identity_core::hmac::KeyName;
use acs_identity_core::SystemClock;
use acs_identity_server::operation::Operation;
use acs_identity_testkit::{encode_id, TestServer, ThrottleClass};
use prometheus_parse::{Sample, Scrape, Value};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::limits::{hold_a_request, http_addr};

/// A parsed exposition.
struct Exposition {
    text: String,
    scrape: Scrape,
}

impl Exposition {
    fn parse(text: String) -> Exposition {
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = Scrape::parse(lines).expect("a Prometheus text exposition");
        Exposition { text, scrape }
    }

    fn find(&self, metric: &str, labels: &[(&str, &str)]) -> Option<&Sample> {
        self.scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
    }

    /// A counter's, gauge's or a histogram's `_count`/`_sum` value; panics when absent.
    fn value(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        match self.find(metric, labels) {
            Some(Sample {
                value: Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v), ..
            }) => *v,
            other => panic!("{metric} {labels:?}: {other:?} in\n{}", self.text),
        }
    }

    /// Requests of `operation` answered with `class`.
    fn requests(&self, operation: &str, class: &str) -> f64 {
        self.value(
            "acsid_http_requests_total",
            &[("operation", operation), ("status_class", class)],
        )
    }

    fn sum(&self, metric: &str) -> f64 {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == metric)
            .map(|s| match s.value {
                Value::Counter(v) | Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    }
}

async fn scrape(s: &TestServer) -> Exposition {
    let r = s.request(Method::GET, "/metrics").unsigned().send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let ct = r.header("content-type").unwrap_or_default().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    Exposition::parse(r.text)
}

async fn scrape_at(addr: std::net::SocketAddr) -> Exposition {
    let r = reqwest::get(format!("http://{addr}/metrics")).await.expect("scrape");
    assert_eq!(r.status(), StatusCode::OK);
    Exposition::parse(r.text().await.expect("body"))
}

#[tokio::test]
async fn figures_move_with_load_and_agree_with_the_activity_counters() {
    let s = TestServer::start_throttled(ThrottleClass::IssueAccessToken, 2, 600).await;
    let before = scrape(&s).await;

    let kept = s.create_user().await;
    let dropped = s.create_user().await;
    let r = s
        .post("/identities?api-version=2023-10-01", json!({"createTokenWithScopes": ["chat"]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let created_token = r.json["accessToken"]["token"].as_str().unwrap().to_owned();
    let with_token = r.json["identity"]["id"].as_str().unwrap().to_owned();
    let token = s.issue_token(&kept).await;
    s.issue_token(&kept).await;
    let issue =
        format!("/identities/{}/:issueAccessToken?api-version=2023-10-01", encode_id(&kept));
    let r = s.post(&issue, json!({"scopes": ["chat"]})).await;
    r.assert_error(429, "TooManyRequests");
    let revoke =
        format!("/identities/{}/:revokeAccessTokens?api-version=2023-10-01", encode_id(&kept));
    assert_eq!(s.request(Method::POST, &revoke).send().await.status, StatusCode::NO_CONTENT);
    let delete = format!("/identities/{}?api-version=2023-10-01", encode_id(&dropped));
    assert_eq!(s.request(Method::DELETE, &delete).send().await.status, StatusCode::NO_CONTENT);
    let r = s.request(Method::POST, "/identities?api-version=2023-10-01").unsigned().send().await;
    r.assert_error(401, "Denied");
    let r = s.request(Method::GET, "/no/such/route").unsigned().send().await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Probes are not counted.
    assert_eq!(s.request(Method::GET, "/healthz").unsigned().send().await.status, StatusCode::OK);
    assert_eq!(s.request(Method::GET, "/readyz").unsigned().send().await.status, StatusCode::OK);

    let after = scrape(&s).await;
    let moved = |f: &dyn Fn(&Exposition) -> f64| f(&after) - f(&before);
    for (op, class, n) in [
        ("create_identity", "2xx", 3.0),
        ("create_identity", "4xx", 1.0),
        ("issue_access_token", "2xx", 2.0),
        ("issue_access_token", "4xx", 1.0),
        ("revoke_access_tokens", "2xx", 1.0),
        ("delete_identity", "2xx", 1.0),
        ("unknown", "4xx", 1.0),
        ("get_identity", "2xx", 0.0),
    ] {
        assert_eq!(moved(&|e| e.requests(op, class)), n, "{op} {class}");
    }
    let latency = "acsid_http_request_duration_seconds_count";
    assert_eq!(moved(&|e| e.value(latency, &[("operation", "create_identity")])), 4.0);
    assert_eq!(moved(&|e| e.value(latency, &[("operation", "issue_access_token")])), 3.0);
    let tokens = "acsid_tokens_issued_total";
    assert_eq!(moved(&|e| e.value(tokens, &[("operation", "create_identity")])), 1.0);
    assert_eq!(moved(&|e| e.value(tokens, &[("operation", "issue_access_token")])), 2.0);
    assert_eq!(moved(&|e| e.value("acsid_identities_created_total", &[])), 3.0);
    assert_eq!(moved(&|e| e.value("acsid_identities_deleted_total", &[])), 1.0);
    assert_eq!(moved(&|e| e.value("acsid_revocations_total", &[])), 1.0);
    let throttled = "acsid_throttled_requests_total";
    assert_eq!(moved(&|e| e.value(throttled, &[("operation", "issue_access_token")])), 1.0);
    assert_eq!(moved(&|e| e.sum("acsid_shed_requests_total")), 0.0);
    assert_eq!(moved(&|e| e.sum("acsid_store_errors_total")), 0.0);
    assert_eq!(after.value("acsid_http_requests_in_flight", &[]), 0.0);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(after.value("acsid_build_info", &[("version", version)]), 1.0);
    // Three creates, a revoke and a delete went through group commit (and perhaps the
    // token times written behind): at least five writes in at least one commit.
    let batches = moved(&|e| e.value("acsid_store_commit_batch_size_count", &[]));
    assert!(batches >= 1.0, "{batches}");
    assert!(moved(&|e| e.value("acsid_store_commit_batch_size_sum", &[])) >= 5.0);
    assert_eq!(moved(&|e| e.value("acsid_store_commit_duration_seconds_count", &[])), batches);
    match after.find("acsid_http_request_duration_seconds", &[("operation", "create_identity")]) {
        Some(Sample { value: Value::Histogram(buckets), .. }) => {
            let inf = buckets.iter().find(|b| b.less_than.is_infinite()).expect("+Inf bucket");
            assert_eq!(inf.count, after.value(latency, &[("operation", "create_identity")]));
        }
        other => panic!("latency is not a histogram: {other:?}"),
    }

    // Labels are bounded: operation names, a few route names, status classes.
    let known: HashSet<&str> = Operation::ALL
        .iter()
        .map(|op| op.spec().name)
        .chain(["jwks", "openapi", "console", "unknown"])
        .collect();
    for sample in &after.scrape.samples {
        if let Some(op) = sample.labels.get("operation") {
            assert!(known.contains(op), "unexpected operation label {op}");
            assert!(!["get_activity", "metrics", "healthz", "readyz"].contains(&op));
        }
    }
    // No identity, key or token in it.
    let secrets = [
        kept.clone(),
        dropped.clone(),
        with_token.clone(),
        token,
        created_token,
        s.key(KeyName::Primary),
        s.key(KeyName::Secondary),
        s.resource_id(),
    ];
    for secret in &secrets {
        assert!(!after.text.contains(secret.as_str()), "the exposition shows {secret}");
    }
    let uuid = kept.rsplit('_').next().unwrap();
    assert!(!after.text.contains(uuid));

    // The console's activity counters come from the same observations.
    let r = s.request(Method::GET, "/activity").send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let samples = r.json["samples"].as_array().unwrap();
    let total = |field: &str| samples.iter().map(|x| x[field].as_f64().unwrap()).sum::<f64>();
    assert_eq!(total("requests"), after.sum("acsid_http_requests_total"), "{}", r.text);
    assert_eq!(total("tokensIssued"), after.sum("acsid_tokens_issued_total"));
    let errors = after
        .scrape
        .samples
        .iter()
        .filter(|s| s.metric == "acsid_http_requests_total")
        .filter(|s| matches!(s.labels.get("status_class"), Some("4xx" | "5xx")))
        .map(|s| match s.value {
            Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum::<f64>();
    assert_eq!(total("errors"), errors);
}

#[tokio::test]
async fn metrics_listen_serves_metrics_there_and_not_on_the_api_listeners() {
    let s = TestServer::start_with(
        |c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap()),
        Arc::new(SystemClock),
    )
    .await;
    let addr = s.inner().metrics_addr().expect("metrics listener");
    assert_ne!(addr, s.inner().https_addr());
    s.create_user().await;
    let e = scrape_at(addr).await;
    assert_eq!(e.value("acsid_identities_created_total", &[]), 1.0);

    for https in [true, false] {
        let mut request = s.request(Method::GET, "/metrics").unsigned();
        if !https {
            request = request.plain_http();
        }
        request.send().await.assert_error(404, "NotFound");
    }
    let r = reqwest::get(format!("http://{addr}/identities")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NotFound");
}

#[tokio::test]
async fn metrics_off_answers_404_and_the_console_keeps_its_activity() {
    let s = TestServer::start_with(|c| c.metrics = false, Arc::new(SystemClock)).await;
    s.request(Method::GET, "/metrics").unsigned().send().await.assert_error(404, "NotFound");
    s.create_user().await;
    let r = s.request(Method::GET, "/activity").send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let count = |op: &str| {
        r.json["byOperation"][op].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).sum()
    };
    // Without metrics, `/metrics` is just a route the service does not have.
    assert_eq!((count("create_identity"), count("unknown")), (1, 1), "{}", r.text);
}

#[tokio::test]
async fn shed_requests_and_requests_in_flight_are_counted() {
    let s = TestServer::start_with(
        |c| {
            c.max_in_flight_requests = 2;
            c.request_timeout_seconds = 120;
            c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        },
        Arc::new(SystemClock),
    )
    .await;
    let addr = s.inner().metrics_addr().expect("metrics listener");
    let held = vec![hold_a_request(http_addr(&s)).await, hold_a_request(http_addr(&s)).await];
    // The scrape has its own listener, outside the API's in-flight limit.
    let deadline = Instant::now() + Duration::from_secs(10);
    while scrape_at(addr).await.value("acsid_http_requests_in_flight", &[]) < 2.0 {
        assert!(Instant::now() < deadline, "the held requests were never in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = s.post("/identities?api-version=2023-10-01", json!({})).await;
    r.assert_error(503, "ServiceUnavailable");
    let e = scrape_at(addr).await;
    assert_eq!(e.value("acsid_shed_requests_total", &[("operation", "create_identity")]), 1.0);
    assert_eq!(e.requests("create_identity", "5xx"), 1.0);
    assert_eq!(e.sum("acsid_store_errors_total"), 0.0);
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while scrape_at(addr).await.value("acsid_http_requests_in_flight", &[]) > 0.0 {
        assert!(Instant::now() < deadline, "closed requests still counted in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn readyz_and_healthz_answer_on_a_working_node() {
    let s = TestServer::start().await;
    let r = s.request(Method::GET, "/readyz").unsigned().send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "ready");
    let r = s.request(Method::GET, "/healthz").unsigned().plain_http().send().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "ok");
}

#[tokio::test]
async fn a_key_regeneration_counts_one_key_reload() {
    let s = TestServer::start().await;
    let reloads = |e: &Exposition| e.value("acsid_key_reloads_total", &[]);
    assert_eq!(reloads(&scrape(&s).await), 0.0);
    let store = s.inner().state().store();
    let key = acs_identity_server::state::random_key().unwrap();
    store.regenerate_access_key(KeyName::Secondary, key).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // A node makes sure its keys are current before it authenticates a request.
        s.create_user().await;
        let n = reloads(&scrape(&s).await);
        if n > 0.0 {
            assert_eq!(n, 1.0);
            break;
        }
        assert!(Instant::now() < deadline, "the regenerated key was never loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
