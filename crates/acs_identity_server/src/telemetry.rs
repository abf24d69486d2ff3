//! The node's Prometheus metrics, served at `GET /metrics` (or on `metrics_listen`).
//!
//! Every node has its own registry (a `metrics-exporter-prometheus` recorder that is never
//! installed as the `metrics` crate's global recorder): the instruments below are handles
//! registered with it once, at start, and kept in [`AppState`](crate::AppState), so several
//! services in one process (tests, the emulator) never count into each other's figures.
//! The store gets its own handles ([`acs_identity_store::StoreMetrics`]) from the same
//! registry.
//!
//! Labels are bounded: an operation's `snake_case` name from the operation table, a few
//! fixed names for the service's other routes ([`RouteLabel`]), `unknown` for everything
//! else, and a status class. Never an identity id, a key, a token or anything a client
//! wrote.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::operation::Operation;

/// Upper bounds of the latency and commit-time buckets, in seconds.
const SECONDS_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Upper bounds of the group-commit batch size buckets (the writer takes at most 512).
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Metric names, as exposed.
pub mod names {
    /// Counter: requests answered, by `operation` and `status_class`.
    pub const REQUESTS: &str = "acsid_http_requests_total";
    /// Histogram: seconds from a request's head to its answer, by `operation`.
    pub const DURATION: &str = "acsid_http_request_duration_seconds";
    /// Gauge: requests being handled now.
    pub const IN_FLIGHT: &str = "acsid_http_requests_in_flight";
    /// Counter: access tokens issued, by `operation`.
    pub const TOKENS_ISSUED: &str = "acsid_tokens_issued_total";
    /// Counter: identities created (successful `POST /identities`).
    pub const IDENTITIES_CREATED: &str = "acsid_identities_created_total";
    /// Counter: identities deleted (successful `DELETE /identities/{id}`).
    pub const IDENTITIES_DELETED: &str = "acsid_identities_deleted_total";
    /// Counter: successful revocations of an identity's tokens.
    pub const REVOCATIONS: &str = "acsid_revocations_total";
    /// Counter: requests answered 429 by throttling, by `operation`.
    pub const THROTTLED: &str = "acsid_throttled_requests_total";
    /// Counter: requests answered 503 at once because `max_in_flight_requests` were in flight.
    pub const SHED: &str = "acsid_shed_requests_total";
    /// Counter: requests that failed in the store, by `kind` (`unavailable`, `error`).
    pub const STORE_ERRORS: &str = "acsid_store_errors_total";
    /// Histogram: writes committed together by one SQLite group commit.
    pub const COMMIT_BATCH: &str = "acsid_store_commit_batch_size";
    /// Histogram: seconds one SQLite group commit took.
    pub const COMMIT_DURATION: &str = "acsid_store_commit_duration_seconds";
    /// Counter: times the node switched to changed keys in the store.
    pub const KEY_RELOADS: &str = "acsid_key_reloads_total";
    /// Gauge, always 1: the running `version`.
    pub const BUILD_INFO: &str = "acsid_build_info";
}

/// Labels of requests that are not operations of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteLabel {
    /// `GET /.well-known/jwks.json`.
    Jwks,
    /// `GET /openapi/{file}`.
    Openapi,
    /// The web console's files.
    Console,
    /// No route: a 404 or 405 of the fallback.
    Unknown,
}

impl RouteLabel {
    const ALL: [RouteLabel; 4] =
        [RouteLabel::Jwks, RouteLabel::Openapi, RouteLabel::Console, RouteLabel::Unknown];

    fn name(self) -> &'static str {
        match self {
            RouteLabel::Jwks => "jwks",
            RouteLabel::Openapi => "openapi",
            RouteLabel::Console => "console",
            RouteLabel::Unknown => "unknown",
        }
    }
}

/// What a request is counted as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// An operation of the table.
    Operation(Operation),
    /// Another route of the service, or none.
    Other(RouteLabel),
}

impl Route {
    /// Classifies a request by its method and the route axum matched (`None`: no route).
    /// `None` for the monitoring reads, which are not counted: `GET /activity`, `/metrics`,
    /// `/healthz` and `/readyz` (probes and scrapes at a fixed rate would only hide the
    /// traffic they watch).
    pub fn of(method: &Method, matched: Option<&str>) -> Option<Route> {
        let Some(path) = matched else { return Some(Route::Other(RouteLabel::Unknown)) };
        if let Some(op) = Operation::find(method, path) {
            return (op != Operation::GetActivity).then_some(Route::Operation(op));
        }
        Some(Route::Other(match path {
            "/healthz" | "/readyz" | "/metrics" => return None,
            "/.well-known/jwks.json" => RouteLabel::Jwks,
            p if p.starts_with("/openapi/") => RouteLabel::Openapi,
            p if p == "/console" || p.starts_with("/console/") => RouteLabel::Console,
            _ => RouteLabel::Unknown,
        }))
    }

    /// The `operation` label.
    pub fn name(self) -> &'static str {
        match self {
            Route::Operation(op) => op.spec().name,
            Route::Other(label) => label.name(),
        }
    }
}

/// Why an error answer was given, beyond its status: put on the response by the code that
/// made it (`ApiError`), read by the observing layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 503: `max_in_flight_requests` were already in flight.
    Shed,
    /// 503: the store could not be reached.
    StoreUnavailable,
    /// 500: the store failed otherwise.
    Store,
}

/// One answered request, as the observing layer saw it.
#[derive(Clone, Copy, Debug)]
pub struct Observation {
    /// What it is counted as.
    pub route: Route,
    /// The status answered.
    pub status: StatusCode,
    /// Access tokens it issued (0 or 1).
    pub tokens: u64,
    /// From its head to its answer.
    pub elapsed: Duration,
    /// Why it failed, when the answer says more than its status.
    pub failure: Option<Failure>,
}

/// The instruments of one `operation` label.
#[derive(Debug)]
struct RouteInstruments {
    /// By status class: 1xx … 5xx.
    by_class: [Counter; 5],
    duration: Histogram,
    tokens: Counter,
    throttled: Counter,
    shed: Counter,
}

/// The node's metrics: its registry and the handles the service records into. Cheap to
/// clone. Disabled (`metrics = false`), every handle is a no-op and nothing is served.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    handle: Option<PrometheusHandle>,
    routes: HashMap<&'static str, RouteInstruments>,
    in_flight: Gauge,
    identities_created: Counter,
    identities_deleted: Counter,
    revocations: Counter,
    store_unavailable: Counter,
    store_errors: Counter,
    key_reloads: Counter,
    store: acs_identity_store::StoreMetrics,
}

/// A request in flight; counted down when dropped.
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Registers handles with a recorder, or hands out no-ops.
struct Registrar<'a>(Option<&'a dyn Recorder>);

impl Registrar<'_> {
    fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
        Key::from_parts(name, labels.iter().map(|&(k, v)| Label::new(k, v)).collect::<Vec<_>>())
    }

    fn counter(&self, name: &'static str, labels: &[(&'static str, &'static str)]) -> Counter {
        self.0.map_or(Counter::noop(), |r| r.register_counter(&Self::key(name, labels), &METADATA))
    }

    fn gauge(&self, name: &'static str, labels: &[(&'static str, &'static str)]) -> Gauge {
        self.0.map_or(Gauge::noop(), |r| r.register_gauge(&Self::key(name, labels), &METADATA))
    }

    fn histogram(&self, name: &'static str, labels: &[(&'static str, &'static str)]) -> Histogram {
        self.0.map_or(Histogram::noop(), |r| {
            r.register_histogram(&Self::key(name, labels), &METADATA)
        })
    }

    fn describe(&self) {
        let Some(r) = self.0 else { return };
        use names::*;
        let counters = [
            (REQUESTS, "Requests answered, by operation and status class."),
            (TOKENS_ISSUED, "Access tokens issued, by operation."),
            (IDENTITIES_CREATED, "Successful identity creates (a create that returns the existing identity of a custom id included)."),
            (IDENTITIES_DELETED, "Successful identity deletes (deleting a deleted identity again included)."),
            (REVOCATIONS, "Successful revocations of an identity's tokens."),
            (THROTTLED, "Requests answered 429 by throttling, by operation."),
            (SHED, "Requests answered 503 at once because max_in_flight_requests were in flight, by operation."),
            (STORE_ERRORS, "Requests that failed in the store, by kind: unavailable (503) or error (500)."),
            (KEY_RELOADS, "Times this node switched to changed access or signing keys in the store."),
        ];
        for (name, help) in counters {
            r.describe_counter(KeyName::from_const_str(name), None, help.into());
        }
        r.describe_gauge(
            KeyName::from_const_str(IN_FLIGHT),
            None,
            "Requests being handled now.".into(),
        );
        r.describe_gauge(
            KeyName::from_const_str(BUILD_INFO),
            None,
            "Always 1; the label version is the running release.".into(),
        );
        let histograms = [
            (
                DURATION,
                Some(Unit::Seconds),
                "Time from a request's head to its answer, by operation.",
            ),
            (
                COMMIT_BATCH,
                Some(Unit::Count),
                "Writes committed together by one SQLite group commit.",
            ),
            (
                COMMIT_DURATION,
                Some(Unit::Seconds),
                "Time of one SQLite group commit, BEGIN to COMMIT.",
            ),
        ];
        for (name, unit, help) in histograms {
            r.describe_histogram(KeyName::from_const_str(name), unit, help.into());
        }
    }
}

impl Metrics {
    /// A fresh registry with every instrument registered, or, when not `enabled`, no-ops.
    /// Enabled, it starts a task (on the current Tokio runtime) that folds histogram
    /// samples into their buckets every few seconds, so memory stays bounded without
    /// scrapes; the task ends when the last clone is dropped.
    pub fn new(enabled: bool) -> Metrics {
        let recorder = enabled.then(|| {
            let seconds = |b: PrometheusBuilder, name: &str| {
                b.set_buckets_for_metric(Matcher::Full(name.to_owned()), &SECONDS_BUCKETS)
            };
            // The bucket lists are constants and not empty, which is all that can fail.
            let builder = seconds(PrometheusBuilder::new(), names::DURATION)
                .and_then(|b| seconds(b, names::COMMIT_DURATION))
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(names::COMMIT_BATCH.to_owned()),
                        &BATCH_BUCKETS,
                    )
                })
                .unwrap_or_else(|e| unreachable!("constant buckets are valid: {e}"));
            builder.build_recorder()
        });
        let reg = Registrar(recorder.as_ref().map(|r| r as &dyn Recorder));
        reg.describe();
        let mut routes = HashMap::new();
        let labels = Operation::ALL
            .into_iter()
            .filter(|&op| op != Operation::GetActivity)
            .map(Route::Operation)
            .chain(RouteLabel::ALL.into_iter().map(Route::Other));
        for route in labels {
            let name = route.name();
            let op = [("operation", name)];
            let class = |c: &'static str| {
                reg.counter(names::REQUESTS, &[("operation", name), ("status_class", c)])
            };
            let issues = matches!(route, Route::Operation(o) if issues_tokens(o));
            let throttled = matches!(route, Route::Operation(o) if o.spec().throttle.is_some());
            routes.insert(
                name,
                RouteInstruments {
                    by_class: [
                        class("1xx"),
                        class("2xx"),
                        class("3xx"),
                        class("4xx"),
                        class("5xx"),
                    ],
                    duration: reg.histogram(names::DURATION, &op),
                    tokens: if issues {
                        reg.counter(names::TOKENS_ISSUED, &op)
                    } else {
                        Counter::noop()
                    },
                    throttled: if throttled {
                        reg.counter(names::THROTTLED, &op)
                    } else {
                        Counter::noop()
                    },
                    shed: reg.counter(names::SHED, &op),
                },
            );
        }
        reg.gauge(names::BUILD_INFO, &[("version", env!("CARGO_PKG_VERSION"))]).set(1.0);
        let inner = Arc::new(Inner {
            routes,
            in_flight: reg.gauge(names::IN_FLIGHT, &[]),
            identities_created: reg.counter(names::IDENTITIES_CREATED, &[]),
            identities_deleted: reg.counter(names::IDENTITIES_DELETED, &[]),
            revocations: reg.counter(names::REVOCATIONS, &[]),
            store_unavailable: reg.counter(names::STORE_ERRORS, &[("kind", "unavailable")]),
            store_errors: reg.counter(names::STORE_ERRORS, &[("kind", "error")]),
            key_reloads: reg.counter(names::KEY_RELOADS, &[]),
            store: acs_identity_store::StoreMetrics {
                commit_batch_size: reg.histogram(names::COMMIT_BATCH, &[]),
                commit_seconds: reg.histogram(names::COMMIT_DURATION, &[]),
            },
            handle: recorder.as_ref().map(|r| r.handle()),
        });
        if inner.handle.is_some() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(upkeep(Arc::downgrade(&inner)));
            }
        }
        Metrics { inner }
    }

    /// Whether metrics are kept and served.
    pub fn enabled(&self) -> bool {
        self.inner.handle.is_some()
    }

    /// The exposition in Prometheus' text format; `None` when disabled.
    pub fn render(&self) -> Option<String> {
        self.inner.handle.as_ref().map(PrometheusHandle::render)
    }

    /// The handles the store reports its group commits to.
    pub fn store(&self) -> acs_identity_store::StoreMetrics {
        self.inner.store.clone()
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn begin(&self) -> InFlight {
        self.inner.in_flight.increment(1.0);
        InFlight(self.inner.in_flight.clone())
    }

    /// Counts one answered request.
    pub fn record(&self, o: &Observation) {
        let Some(route) = self.inner.routes.get(o.route.name()) else { return };
        let class = usize::from(o.status.as_u16() / 100).clamp(1, 5) - 1;
        route.by_class[class].increment(1);
        route.duration.record(o.elapsed.as_secs_f64());
        route.tokens.increment(o.tokens);
        if o.status == StatusCode::TOO_MANY_REQUESTS {
            route.throttled.increment(1);
        }
        match o.failure {
            Some(Failure::Shed) => route.shed.increment(1),
            Some(Failure::StoreUnavailable) => self.inner.store_unavailable.increment(1),
            Some(Failure::Store) => self.inner.store_errors.increment(1),
            None => {}
        }
        if o.status.is_success() {
            match o.route {
                Route::Operation(Operation::CreateIdentity) => {
                    self.inner.identities_created.increment(1)
                }
                Route::Operation(Operation::DeleteIdentity) => {
                    self.inner.identities_deleted.increment(1)
                }
                Route::Operation(Operation::RevokeAccessTokens) => {
                    self.inner.revocations.increment(1)
                }
                _ => {}
            }
        }
    }

    /// Counts a switch to changed keys.
    pub fn key_reloaded(&self) {
        self.inner.key_reloads.increment(1);
    }
}

/// Operations that issue an access token when they succeed (create only with scopes).
pub(crate) fn issues_tokens(op: Operation) -> bool {
    matches!(
        op,
        Operation::CreateIdentity
            | Operation::IssueAccessToken
            | Operation::ExchangeTeamsUserToken
            | Operation::ExchangeTeamsExtensionToken
            | Operation::ExchangeEntraToken
    )
}

async fn upkeep(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if let Some(handle) = &inner.handle {
            handle.run_upkeep();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(m: &str) -> Method {
        m.parse().unwrap()
    }

    #[test]
    fn routes_are_labelled_by_bounded_names() {
        let route = |m: &str, p: Option<&str>| Route::of(&get(m), p).map(Route::name);
        assert_eq!(route("POST", Some("/identities")), Some("create_identity"));
        assert_eq!(
            route("POST", Some("/identities/{id}/:issueAccessToken")),
            Some("issue_access_token")
        );
        assert_eq!(route("GET", Some("/.well-known/jwks.json")), Some("jwks"));
        assert_eq!(route("GET", Some("/openapi/{file}")), Some("openapi"));
        assert_eq!(route("GET", Some("/console/console.js")), Some("console"));
        assert_eq!(route("GET", None), Some("unknown"));
        assert_eq!(route("PUT", Some("/identities")), Some("unknown"));
        for (m, p) in
            [("GET", "/activity"), ("GET", "/metrics"), ("GET", "/healthz"), ("GET", "/readyz")]
        {
            assert_eq!(route(m, Some(p)), None, "{p}");
        }
    }

    #[test]
    fn disabled_metrics_render_nothing() {
        let m = Metrics::new(false);
        assert!(!m.enabled());
        assert_eq!(m.render(), None);
        let _guard = m.begin();
        m.record(&Observation {
            route: Route::Operation(Operation::CreateIdentity),
            status: StatusCode::CREATED,
            tokens: 1,
            elapsed: Duration::from_millis(1),
            failure: None,
        });
    }

    #[tokio::test]
    async fn two_registries_do_not_share_counts() {
        let (a, b) = (Metrics::new(true), Metrics::new(true));
        a.record(&Observation {
            route: Route::Operation(Operation::CreateIdentity),
            status: StatusCode::CREATED,
            tokens: 0,
            elapsed: Duration::from_millis(1),
            failure: None,
        });
        let line = "acsid_identities_created_total";
        let value = |text: String| {
            text.lines()
                .find(|l| l.starts_with(line))
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_owned)
        };
        assert_eq!(value(a.render().unwrap()).as_deref(), Some("1"));
        assert_eq!(value(b.render().unwrap()).as_deref(), Some("0"));
    }
}
