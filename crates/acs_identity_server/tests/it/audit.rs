//! The audit log: every state-changing request, successful or not, is one JSON line with
//! who, what, on which identity and how it ended — and nothing secret.

use acs_identity_core::clock::Clock as _;
use std::sync::Arc;

use acs_identity_core::time_format::parse_rfc3339;
use acs_identity_core::SystemClock;
use acs_identity_server::audit::AuditDestination;
use acs_identity_testkit::issuer::API_AUDIENCE;
use acs_identity_testkit::{encode_id, uuid_like, TestIssuer, TestResponse, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::log_secrets::{tamper, Signer};

/// A request signed here with `key_b64`, so the signature is known; with a client request id.
async fn signed(
    signer: &mut Signer<'_>,
    method: Method,
    path_and_query: &str,
    body: &Value,
    key_b64: &str,
    request_id: &str,
) -> TestResponse {
    signer
        .request(method, path_and_query, body, key_b64)
        .header("x-ms-client-request-id", request_id)
        .send()
        .await
}

/// A request with an Entra bearer token.
async fn bearer(
    s: &TestServer,
    method: Method,
    path_and_query: &str,
    token: &str,
    request_id: &str,
) -> TestResponse {
    s.request(method, path_and_query)
        .unsigned()
        .json(&json!({}))
        .header("authorization", &format!("Bearer {token}"))
        .header("x-ms-client-request-id", request_id)
        .send()
        .await
}

/// What one audit line must say.
struct Expected {
    request_id: String,
    operation: &'static str,
    who: String,
    status: u16,
    error_code: Option<&'static str>,
    target: Option<String>,
}

#[derive(Default)]
struct Expectations(Vec<Expected>);

impl Expectations {
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    fn push(
        &mut self,
        r: &TestResponse,
        request_id: &str,
        operation: &'static str,
        who: &str,
        status: u16,
        error_code: Option<&'static str>,
        target: Option<&str>,
    ) {
        assert_eq!(r.status.as_u16(), status, "{request_id}: {}", r.text);
        self.0.push(Expected {
            request_id: request_id.to_owned(),
            operation,
            who: who.to_owned(),
            status,
            error_code,
            target: target.map(str::to_owned),
        });
    }
}

#[tokio::test]
async fn every_state_changing_request_is_audited_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let issuer = TestIssuer::start().await;
    let trust = issuer.config_url();
    let audit = AuditDestination::File(path.clone());
    let s = TestServer::start_with(
        move |c| {
            c.entra.issuers.push(trust);
            c.audit_log = audit;
        },
        Arc::new(SystemClock),
    )
    .await;
    let started = SystemClock.now();
    let mut signer = Signer::new(&s);
    let (primary, secondary) = signer.keys.clone();
    let mut expect = Expectations::default();
    let (v23, vpre, v25) =
        ("api-version=2023-10-01", "api-version=2025-03-02-preview", "api-version=2025-06-30");
    let create = format!("/identities?{v23}");

    // Identities and tokens, with both keys, and their failures.
    let r = signed(&mut signer, Method::POST, &create, &json!({}), &primary, "c-1").await;
    let id = r.json["identity"]["id"].as_str().unwrap_or_default().to_owned();
    expect.push(&r, "c-1", "identity.create", "key:primary", 201, None, Some(&id));
    let body = json!({"createTokenWithScopes": ["chat"]});
    let r = signed(&mut signer, Method::POST, &create, &body, &secondary, "c-2").await;
    let id2 = r.json["identity"]["id"].as_str().unwrap_or_default().to_owned();
    signer.secrets.add_token("created token", r.json["accessToken"]["token"].as_str().unwrap());
    expect.push(&r, "c-2", "identity.create_with_token", "key:secondary", 201, None, Some(&id2));
    let body = json!({"createTokenWithScopes": ["chat"], "expiresInMinutes": 5});
    let r = signed(&mut signer, Method::POST, &create, &body, &primary, "c-3").await;
    expect.push(&r, "c-3", "identity.create", "key:primary", 400, Some("ValidationError"), None);
    let forged = tamper(&primary);
    let r = signed(&mut signer, Method::POST, &create, &json!({}), &forged, "c-4").await;
    expect.push(&r, "c-4", "identity.create", "unauthenticated", 401, Some("Denied"), None);

    let issue = format!("/identities/{}/:issueAccessToken?{v23}", encode_id(&id));
    let r =
        signed(&mut signer, Method::POST, &issue, &json!({"scopes": ["voip"]}), &primary, "t-1")
            .await;
    signer.secrets.add_answered_token("issued token", &r, "/token");
    expect.push(&r, "t-1", "token.issue", "key:primary", 200, None, Some(&id));
    let foreign = "8:acs:00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001";
    let issue_foreign = format!("/identities/{}/:issueAccessToken?{v23}", encode_id(foreign));
    let r = signed(
        &mut signer,
        Method::POST,
        &issue_foreign,
        &json!({"scopes": ["voip"]}),
        &primary,
        "t-2",
    )
    .await;
    expect.push(
        &r,
        "t-2",
        "token.issue",
        "key:primary",
        401,
        Some("IdentityNotOwned"),
        Some(foreign),
    );
    let revoke = format!("/identities/{}/:revokeAccessTokens?{v23}", encode_id(&id));
    let r = signed(&mut signer, Method::POST, &revoke, &json!({}), &primary, "r-1").await;
    expect.push(&r, "r-1", "token.revoke", "key:primary", 204, None, Some(&id));
    let delete = format!("/identities/{}?{v23}", encode_id(&id));
    let r = signed(&mut signer, Method::DELETE, &delete, &json!({}), &secondary, "d-1").await;
    expect.push(&r, "d-1", "identity.delete", "key:secondary", 204, None, Some(&id));
    let r = signed(&mut signer, Method::POST, &revoke, &json!({}), &primary, "r-2").await;
    expect.push(&r, "r-2", "token.revoke", "key:primary", 404, Some("IdentityNotFound"), Some(&id));

    // Reads are not audited.
    let get = format!("/identities/{}?{vpre}", encode_id(&id2));
    let r = signed(&mut signer, Method::GET, &get, &json!({}), &primary, "read-1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = signed(
        &mut signer,
        Method::POST,
        "/accessTokens/:validate",
        &json!({"token": "x"}),
        &primary,
        "read-2",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // An Entra principal calling the management API.
    let (oid, app) = (uuid_like(), uuid_like());
    let token = issuer.mint(&issuer.claims(API_AUDIENCE, &oid, &app, "user_impersonation"));
    signer.secrets.add_token("Entra token (API)", &token);
    let r = bearer(&s, Method::POST, &create, &token, "e-1").await;
    let id3 = r.json["identity"]["id"].as_str().unwrap_or_default().to_owned();
    expect.push(&r, "e-1", "identity.create", &format!("principal:{oid}"), 201, None, Some(&id3));

    // The Teams user exchange, accepted and refused.
    let teams_oid = uuid_like();
    let teams = issuer.teams_token(&teams_oid, &app, "Teams.ManageCalls");
    signer.secrets.add_token("Teams user token", &teams);
    let exchange = format!("/teamsUser/:exchangeAccessToken?{v23}");
    let body = json!({"token": teams, "appId": app, "userId": teams_oid});
    let r = signed(&mut signer, Method::POST, &exchange, &body, &primary, "x-1").await;
    signer.secrets.add_answered_token("exchanged Teams token", &r, "/token");
    let teams_id = format!("8:orgid:{teams_oid}");
    expect.push(&r, "x-1", "teams_user.exchange", "key:primary", 200, None, Some(&teams_id));
    let body = json!({"token": tamper(&teams), "appId": app, "userId": teams_oid});
    let r = signed(&mut signer, Method::POST, &exchange, &body, &primary, "x-2").await;
    expect.push(
        &r,
        "x-2",
        "teams_user.exchange",
        "key:primary",
        401,
        Some("InvalidAccessToken"),
        None,
    );

    // Teams Phone extensibility: an assignment, the exchange it allows, refusals, removal.
    let tenant = issuer.tenant_id().to_owned();
    let ext_oid = uuid_like();
    let assignment = format!("/access/teamsExtension/tenants/{tenant}/assignments/{ext_oid}?{v25}");
    let body = json!({"principalType": "user", "clientIds": [app]});
    let r = signed(&mut signer, Method::PUT, &assignment, &body, &primary, "a-1").await;
    let pair = format!("{tenant}/{ext_oid}");
    expect.push(&r, "a-1", "teams_extension.assignment.put", "key:primary", 201, None, Some(&pair));
    let ext_exchange = format!("/access/teamsExtension/:exchangeAccessToken?{v25}");
    let ext = issuer.teams_token(&ext_oid, &app, "TeamsExtension.ManageCalls");
    signer.secrets.add_token("Teams extension token", &ext);
    let r = bearer(&s, Method::POST, &ext_exchange, &ext, "x-3").await;
    signer.secrets.add_answered_token("exchanged extension token", &r, "/accessToken/token");
    let ext_id = format!("8:acs:{}_{tenant}_{ext_oid}", s.resource_id());
    let principal = format!("principal:{ext_oid}");
    expect.push(&r, "x-3", "teams_extension.exchange", &principal, 200, None, Some(&ext_id));
    let other = uuid_like();
    let unassigned = issuer.teams_token(&other, &app, "TeamsExtension.ManageCalls");
    signer.secrets.add_token("unassigned extension token", &unassigned);
    let r = bearer(&s, Method::POST, &ext_exchange, &unassigned, "x-4").await;
    expect.push(
        &r,
        "x-4",
        "teams_extension.exchange",
        &format!("principal:{other}"),
        403,
        Some("Forbidden"),
        None,
    );
    let r = bearer(&s, Method::POST, &ext_exchange, &tamper(&ext), "x-5").await;
    expect.push(
        &r,
        "x-5",
        "teams_extension.exchange",
        "unauthenticated",
        401,
        Some("InvalidAccessToken"),
        None,
    );
    let r = signed(&mut signer, Method::DELETE, &assignment, &json!({}), &primary, "a-2").await;
    expect.push(
        &r,
        "a-2",
        "teams_extension.assignment.delete",
        "key:primary",
        204,
        None,
        Some(&pair),
    );

    // Entra user access: assignments one by one and in bulk, the exchange, a bad assignment.
    let (user, user2) = (uuid_like(), uuid_like());
    let one = format!("/access/entra/assignments/{user}?{vpre}");
    let body = json!({"tenantId": tenant, "principalType": "user", "clientIds": [app]});
    let r = signed(&mut signer, Method::PUT, &one, &body, &primary, "a-3").await;
    expect.push(&r, "a-3", "entra.assignment.put", "key:primary", 201, None, Some(&user));
    let patch = format!("/access/entra/assignments?{vpre}");
    let body = json!({user2.clone(): {"tenantId": tenant, "principalType": "user", "clientIds": [app]}, user.clone(): null});
    let r = signed(&mut signer, Method::PATCH, &patch, &body, &primary, "a-4").await;
    expect.push(&r, "a-4", "entra.assignments.patch", "key:primary", 200, None, None);
    let entra = issuer.mint(&issuer.claims(API_AUDIENCE, &user2, &app, "clients/VoIP"));
    signer.secrets.add_token("Entra user token", &entra);
    let r = bearer(
        &s,
        Method::POST,
        &format!("/access/entra/:exchangeAccessToken?{vpre}"),
        &entra,
        "x-6",
    )
    .await;
    signer.secrets.add_answered_token("exchanged Entra token", &r, "/accessToken/token");
    let entra_id = format!("8:acs:{}_wf_{tenant}_{user2}", s.resource_id());
    let principal = format!("principal:{user2}");
    expect.push(&r, "x-6", "entra.exchange", &principal, 200, None, Some(&entra_id));
    let two = format!("/access/entra/assignments/{user2}?{vpre}");
    let r = signed(&mut signer, Method::DELETE, &two, &json!({}), &primary, "a-5").await;
    expect.push(&r, "a-5", "entra.assignment.delete", "key:primary", 204, None, Some(&user2));
    let body = json!({"tenantId": tenant, "principalType": "robot", "clientIds": [app]});
    let r = signed(&mut signer, Method::PUT, &one, &body, &primary, "a-6").await;
    expect.push(
        &r,
        "a-6",
        "entra.assignment.put",
        "key:primary",
        400,
        Some("ValidationError"),
        Some(&user),
    );

    // The writer flushes its last lines at shutdown.
    let secrets = signer.secrets;
    s.shutdown().await;
    let text = std::fs::read_to_string(&path).expect("audit log written");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), expect.0.len(), "one line per state-changing request:\n{text}");
    let finished = SystemClock.now();
    for (line, e) in lines.iter().zip(&expect.0) {
        let ctx = format!("{}: {line}", e.request_id);
        assert_eq!(line["client_request_id"], e.request_id.as_str(), "{ctx}");
        assert_eq!(line["operation"], e.operation, "{ctx}");
        assert_eq!(line["who"], e.who.as_str(), "{ctx}");
        assert_eq!(line["status"], e.status, "{ctx}");
        assert_eq!(line["error_code"], json!(e.error_code), "{ctx}");
        assert_eq!(line["target"], json!(e.target), "{ctx}");
        let time = parse_rfc3339(line["time"].as_str().unwrap_or_default()).expect("RFC 3339 time");
        assert!(started - time::Duration::seconds(1) <= time && time <= finished, "{ctx}");
        if e.who.starts_with("principal:") {
            assert_eq!(line["app_id"], app.as_str(), "{ctx}");
        } else {
            assert!(line.get("app_id").is_none(), "{ctx}");
        }
    }
    for (label, secret) in &secrets.0 {
        assert!(!text.contains(secret.as_str()), "{label} appears in the audit log:\n{text}");
    }
    assert!(!text.contains("eyJ"), "something JWT-shaped appears in the audit log:\n{text}");
    eprintln!("audit: {} lines checked, {} secrets searched for", lines.len(), secrets.0.len());
}

#[tokio::test]
async fn the_audit_log_is_off_by_default_and_a_bad_path_fails_the_start() {
    let s = TestServer::start().await;
    assert!(!s.inner().state().audit().is_enabled());
    let r = s.post("/identities?api-version=2023-10-01", json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let files: Vec<_> =
        std::fs::read_dir(s.data_dir()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(!files.iter().any(|f| f.to_string_lossy().contains("audit")), "{files:?}");
    s.shutdown().await;

    let dir = tempfile::tempdir().unwrap();
    let config = acs_identity_server::Config {
        data_dir: dir.path().join("data"),
        listen: "127.0.0.1:0".parse().unwrap(),
        audit_log: AuditDestination::File(dir.path().join("missing-dir").join("audit.jsonl")),
        ..Default::default()
    };
    let e = acs_identity_server::serve::Server::start(&config).await.expect_err("bad audit path");
    assert!(format!("{e:#}").contains("cannot open the audit log"), "{e:#}");
}
