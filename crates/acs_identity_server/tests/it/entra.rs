//! Entra bearer authentication, the Teams user exchange, Teams Phone extensibility and
//! Entra user access, against a local OpenID issuer.

use acs_identity_core::clock::Clock as _;
use std::sync::Arc;

use acs_identity_core::SystemClock;
use acs_identity_testkit::issuer::{API_AUDIENCE, TEAMS_AUDIENCE, TEAMS_USER_SCOPES};
use acs_identity_testkit::{jwt_payload, uuid_like, TestIssuer, TestResponse, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;
use time::Duration;

async fn server_trusting(issuer: &TestIssuer, by_url: bool) -> TestServer {
    let cfg = if by_url { issuer.config_url() } else { issuer.config_file() };
    TestServer::start_with(move |c| c.entra.issuers.push(cfg), Arc::new(SystemClock)).await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `POST path` as an end user calls the exchanges: unsigned, with `token` as the bearer token.
async fn exchange_with_bearer(s: &TestServer, path: &str, token: &str) -> TestResponse {
    s.request(Method::POST, path)
        .unsigned()
        .json(&json!({}))
        .header("authorization", &bearer(token))
        .send()
        .await
}

/// `POST /identities` with `token` as the bearer token instead of a signature.
async fn create_with_bearer(s: &TestServer, token: &str) -> TestResponse {
    s.request(Method::POST, "/identities?api-version=2023-10-01")
        .unsigned()
        .header("authorization", &bearer(token))
        .send()
        .await
}

#[tokio::test]
async fn bearer_tokens_from_trusted_issuers_call_the_api() {
    let (s, issuer) = TestServer::start_with_trusted_issuer().await;
    let stranger = TestIssuer::start().await;
    let app = uuid_like();
    let good = issuer.mint(&issuer.claims(API_AUDIENCE, &uuid_like(), &app, "user_impersonation"));
    let r = create_with_bearer(&s, &good).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // The resource URI with a trailing slash and the first-party app id are Entra's other audiences.
    for aud in ["https://communication.azure.com/", "1fd5118e-2576-4263-8130-9503064c837a"] {
        let t = issuer.mint(&issuer.claims(aud, &uuid_like(), &app, ""));
        let r = create_with_bearer(&s, &t).await;
        assert_eq!(r.status, StatusCode::CREATED, "{aud}: {}", r.text);
    }

    let mut expired = issuer.claims(API_AUDIENCE, &uuid_like(), &app, "");
    expired["exp"] = (SystemClock.now() - Duration::minutes(10)).unix_timestamp().into();
    let mut early = issuer.claims(API_AUDIENCE, &uuid_like(), &app, "");
    early["nbf"] = (SystemClock.now() + Duration::minutes(10)).unix_timestamp().into();
    let cases = [
        ("expired", issuer.mint(&expired)),
        ("not yet valid", issuer.mint(&early)),
        (
            "wrong audience",
            issuer.mint(&issuer.claims("https://graph.microsoft.com", &uuid_like(), &app, "")),
        ),
        ("untrusted issuer", stranger.mint(&stranger.claims(API_AUDIENCE, &uuid_like(), &app, ""))),
        (
            "forged signature",
            issuer.mint_forged(&issuer.claims(API_AUDIENCE, &uuid_like(), &app, "")),
        ),
        ("garbage", "not-a-token".to_owned()),
        ("empty", String::new()),
    ];
    for (name, token) in cases {
        let r = create_with_bearer(&s, &token).await;
        r.assert_error(401, "Denied");
        assert!(
            r.header("www-authenticate").is_some_and(|w| w.contains("Bearer")),
            "{name}: {:?}",
            r.headers
        );
    }
    // Never over plain HTTP, even with a good token.
    let r = s
        .request(Method::POST, "/identities?api-version=2023-10-01")
        .unsigned()
        .plain_http()
        .header("authorization", &bearer(&good))
        .send()
        .await;
    r.assert_error(401, "Denied");
    // HMAC keeps working beside it.
    assert_eq!(
        s.send(Method::POST, "/identities?api-version=2023-10-01").await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn unknown_key_ids_refresh_the_jwks_and_files_work() {
    let issuer = TestIssuer::start().await;
    let by_url = server_trusting(&issuer, true).await;
    let by_file = server_trusting(&issuer, false).await;
    let claims = issuer.claims(API_AUDIENCE, &uuid_like(), &uuid_like(), "");
    let before = issuer.mint(&claims);
    for s in [&by_url, &by_file] {
        let r = create_with_bearer(s, &before).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    issuer.rotate();
    let after = issuer.mint(&claims);
    let r = create_with_bearer(&by_url, &after).await;
    assert_eq!(r.status, StatusCode::CREATED, "refetched: {}", r.text);
    // The file still has only the old key.
    let r = create_with_bearer(&by_file, &after).await;
    r.assert_error(401, "Denied");
}

#[tokio::test]
async fn allow_lists_limit_bearer_callers() {
    let issuer = TestIssuer::start().await;
    let allowed = uuid_like();
    let cfg = issuer.config_url();
    let allowed_clone = allowed.clone();
    let s = TestServer::start_with(
        move |c| {
            c.entra.issuers.push(cfg);
            c.entra.allowed_app_ids.push(allowed_clone.to_uppercase());
        },
        Arc::new(SystemClock),
    )
    .await;
    let ok = issuer.mint(&issuer.claims(API_AUDIENCE, &uuid_like(), &allowed, ""));
    let other = issuer.mint(&issuer.claims(API_AUDIENCE, &uuid_like(), &uuid_like(), ""));
    let r = create_with_bearer(&s, &ok).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = create_with_bearer(&s, &other).await;
    r.assert_error(401, "Denied");
}

#[tokio::test]
async fn teams_user_exchange_matches_acs() {
    let (s, issuer) = TestServer::start_with_trusted_issuer().await;
    let (oid, app) = (uuid_like(), uuid_like());
    let entra = issuer.teams_token(&oid, &app, TEAMS_USER_SCOPES);
    let path = "/teamsUser/:exchangeAccessToken?api-version=2023-10-01";
    let r = s.post(path, json!({"token": entra, "appId": app, "userId": oid})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.json["token"].as_str().unwrap();
    let claims = jwt_payload(token);
    assert_eq!(claims["skypeid"], format!("orgid:{oid}"));
    assert_eq!(claims["exp"], jwt_payload(&entra)["exp"], "expires with the Entra token");
    let v = s.validate(token).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["identity"]["id"], format!("8:orgid:{oid}"));

    let mut expired = issuer.claims(TEAMS_AUDIENCE, &oid, &app, "Teams.ManageCalls");
    expired["exp"] = (SystemClock.now() - Duration::minutes(10)).unix_timestamp().into();
    for (name, t) in [
        ("empty", String::new()),
        ("garbage", "abc".to_owned()),
        ("expired", issuer.mint(&expired)),
        (
            "api audience",
            issuer.mint(&issuer.claims(API_AUDIENCE, &oid, &app, "Teams.ManageCalls")),
        ),
        ("no Teams scope", issuer.teams_token(&oid, &app, "User.Read")),
    ] {
        let r = s.post(path, json!({"token": t, "appId": app, "userId": oid})).await;
        let msg = r.assert_error(401, "InvalidAccessToken");
        assert_eq!(msg, "Provided access token is not valid.", "{name}");
    }
    let r = s.post(path, json!({"token": entra, "appId": uuid_like(), "userId": oid})).await;
    assert_eq!(r.assert_error(400, "ValidationError"), "AAD application is not the expected one.");
    assert_eq!(r.json["error"]["target"], "appId");
    let r = s.post(path, json!({"token": entra, "appId": app, "userId": uuid_like()})).await;
    assert_eq!(
        r.assert_error(400, "ValidationError"),
        "Provided AAD token issued for unexpected user."
    );
    assert_eq!(r.json["error"]["target"], "userId");
    let r = s.post(path, json!({"token": entra, "appId": "", "userId": oid})).await;
    assert_eq!(r.assert_error(400, "ValidationError"), "AppId: The AppId field is required.");
    assert_eq!(r.json["error"]["target"], "AppId");
    let r = s.post(path, json!({"token": entra, "appId": app})).await;
    assert_eq!(r.json["error"]["target"], "UserId");

    // The previews take only {token}; 2021-03-07 has no such route.
    let r = s
        .post(
            "/teamsUser/:exchangeAccessToken?api-version=2021-10-31-preview",
            json!({"token": entra}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = s
        .post("/teamsUser/:exchangeAccessToken?api-version=2021-03-07", json!({"token": entra}))
        .await;
    r.assert_error(400, "UnsupportedApiVersion");
}

/// ACS's order (its recorded sessions): the token first (401), then appId and userId required,
/// then their GUID format, then whether they are the token's (all 400).
#[tokio::test]
async fn teams_user_exchange_checks_the_token_before_app_and_user() {
    let (s, issuer) = TestServer::start_with_trusted_issuer().await;
    let (oid, app) = (uuid_like(), uuid_like());
    let entra = issuer.teams_token(&oid, &app, "Teams.ManageCalls");
    let path = "/teamsUser/:exchangeAccessToken?api-version=2022-10-01";
    for (token, app_id, user_id) in [
        ("invalid", app.as_str(), ""),
        ("", app.as_str(), ""),
        ("invalid", "", ""),
        ("", "invalid", "invalid"),
    ] {
        let r = s.post(path, json!({"token": token, "appId": app_id, "userId": user_id})).await;
        let msg = r.assert_error(401, "InvalidAccessToken");
        assert_eq!(msg, "Provided access token is not valid.", "{token:?} {app_id:?} {user_id:?}");
    }
    let r = s.post(path, json!({"appId": "", "userId": ""})).await;
    r.assert_error(401, "InvalidAccessToken");

    let (app, oid) = (app.as_str(), oid.as_str());
    let cases = [
        ("", "", "AppId: The AppId field is required.", "AppId"),
        (app, "", "UserId: The UserId field is required.", "UserId"),
        ("invalid", "invalid", "Provided AppId has invalid format.", "appId"),
        (app, "invalid", "Provided UserId has invalid format.", "userId"),
        (oid, oid, "AAD application is not the expected one.", "appId"),
        (app, app, "Provided AAD token issued for unexpected user.", "userId"),
    ];
    for (app_id, user_id, message, target) in cases {
        let body = json!({"token": entra, "appId": app_id, "userId": user_id});
        let r = s.post(path, body.clone()).await;
        assert_eq!(r.assert_error(400, "ValidationError"), message, "{body}");
        assert_eq!(r.json["error"]["target"], target, "{body}");
    }
    // GUIDs in .NET's other text forms are the same GUIDs.
    let braced = format!("{{{}}}", app.to_uppercase());
    let plain = oid.replace('-', "");
    let r = s.post(path, json!({"token": entra, "appId": braced, "userId": plain})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn teams_extension_assignments_gate_the_exchange() {
    let (s, issuer) = TestServer::start_with_trusted_issuer().await;
    let (oid, app) = (uuid_like(), uuid_like());
    let tenant = issuer.tenant_id().to_owned();
    let v = "api-version=2025-06-30";
    let assignment = format!("/access/teamsExtension/tenants/{tenant}/assignments/{oid}?{v}");
    let exchange = format!("/access/teamsExtension/:exchangeAccessToken?{v}");
    let entra = issuer.teams_token(&oid, &app, "TeamsExtension.ManageCalls");

    exchange_with_bearer(&s, &exchange, &entra).await.assert_error(403, "Forbidden");
    let r = s
        .request(Method::PUT, &assignment)
        .json(&json!({"principalType": "user", "clientIds": [app]}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.json,
        json!({"objectId": oid, "tenantId": tenant, "principalType": "user", "clientIds": [app]})
    );
    let r = s
        .request(Method::PUT, &assignment)
        .json(&json!({"principalType": "user", "clientIds": [app]}))
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let g = s.send(Method::GET, &assignment).await;
    assert_eq!(g.json["principalType"], "user");

    let r = exchange_with_bearer(&s, &exchange, &entra).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = format!("8:acs:{}_{tenant}_{oid}", s.resource_id());
    assert_eq!(r.json["identity"]["id"], id);
    let token = r.json["accessToken"]["token"].as_str().unwrap();
    assert_eq!(s.validate(token).await["identity"]["id"], id);

    // Another client application of the same user is not assigned.
    let other_app = issuer.teams_token(&oid, &uuid_like(), "TeamsExtension.ManageCalls");
    exchange_with_bearer(&s, &exchange, &other_app).await.assert_error(403, "Forbidden");
    // Wrong scope or audience: not a valid token for this route.
    let teams_scope = issuer.teams_token(&oid, &app, "Teams.ManageCalls");
    let api_audience =
        issuer.mint(&issuer.claims(API_AUDIENCE, &oid, &app, "TeamsExtension.ManageCalls"));
    for token in [teams_scope, api_audience] {
        let r = exchange_with_bearer(&s, &exchange, &token).await;
        r.assert_error(401, "InvalidAccessToken");
    }

    let r = s.send(Method::DELETE, &assignment).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    s.send(Method::GET, &assignment).await.assert_error(404, "NotFound");
    exchange_with_bearer(&s, &exchange, &entra).await.assert_error(403, "Forbidden");

    // Validation and versions.
    let bad = format!("/access/teamsExtension/tenants/not-a-guid/assignments/{oid}?{v}");
    s.request(Method::PUT, &bad)
        .json(&json!({"principalType": "user"}))
        .send()
        .await
        .assert_error(400, "ValidationError");
    let r =
        s.request(Method::PUT, &assignment).json(&json!({"principalType": "robot"})).send().await;
    assert_eq!(r.json["error"]["target"], "principalType");
    let r = s.request(Method::PUT, &assignment).json(&json!({})).send().await;
    r.assert_error(400, "ValidationError");
    let old =
        format!("/access/teamsExtension/tenants/{tenant}/assignments/{oid}?api-version=2023-10-01");
    s.send(Method::GET, &old).await.assert_error(400, "UnsupportedApiVersion");
    // Assignment management needs the resource's credentials.
    s.request(Method::GET, &assignment).unsigned().send().await.assert_error(401, "Denied");
}

#[tokio::test]
async fn entra_assignments_list_patch_and_exchange() {
    let (s, issuer) = TestServer::start_with_trusted_issuer().await;
    let tenant = issuer.tenant_id().to_owned();
    let app = uuid_like();
    let v = "api-version=2025-03-02-preview";
    let mut users: Vec<String> = (0..5).map(|_| uuid_like()).collect();
    users.sort();
    for u in &users {
        let r = s
            .request(Method::PUT, &format!("/access/entra/assignments/{u}?{v}"))
            .json(&json!({"tenantId": tenant, "principalType": "user", "clientIds": [app]}))
            .send()
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    // Paging: 2 + 2 + 1.
    let mut seen = Vec::new();
    let mut url = format!("/access/entra/assignments?{v}&maxpagesize=2");
    loop {
        let r = s.send(Method::GET, &url).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        seen.extend(
            r.json["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["objectId"].as_str().unwrap().to_owned()),
        );
        match r.json["nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with("https://"), "{next}");
                url = next
                    .split_once("://")
                    .unwrap()
                    .1
                    .split_once('/')
                    .map(|(_, p)| format!("/{p}"))
                    .unwrap()
            }
            None => break,
        }
    }
    assert_eq!(seen, users);
    // Over the plain-HTTP listener the link says http.
    let r = s
        .request(Method::GET, &format!("/access/entra/assignments?{v}&maxpagesize=2"))
        .plain_http()
        .send()
        .await;
    let next = r.json["nextLink"].as_str().unwrap_or_default();
    assert!(next.starts_with("http://") && next.contains("continuationToken="), "{}", r.text);

    // PATCH: remove one, add one, in one request.
    let added = uuid_like();
    let patch = json!({ users[0].clone(): null, added.clone(): {"tenantId": tenant, "principalType": "user", "clientIds": [app]} });
    let r = s
        .request(Method::PATCH, &format!("/access/entra/assignments?{v}"))
        .json(&patch)
        .header("content-type", "application/merge-patch+json")
        .send()
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["value"][0]["objectId"], added.as_str());
    s.send(Method::GET, &format!("/access/entra/assignments/{}?{v}", users[0]))
        .await
        .assert_error(404, "NotFound");
    // A bad entry rejects the whole PATCH.
    let bad = json!({ users[1].clone(): null, "nope": {"tenantId": tenant} });
    s.request(Method::PATCH, &format!("/access/entra/assignments?{v}"))
        .json(&bad)
        .send()
        .await
        .assert_error(400, "ValidationError");
    assert_eq!(
        s.send(Method::GET, &format!("/access/entra/assignments/{}?{v}", users[1])).await.status,
        StatusCode::OK
    );

    // Exchange for an assigned user, and through a group assignment.
    let exchange = format!("/access/entra/:exchangeAccessToken?{v}");
    let token = issuer.mint(&issuer.claims(API_AUDIENCE, &added, &app, "clients/VoIP"));
    let r = exchange_with_bearer(&s, &exchange, &token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["identity"]["id"], format!("8:acs:{}_wf_{tenant}_{added}", s.resource_id()));
    let group = uuid_like();
    s.request(Method::PUT, &format!("/access/entra/assignments/{group}?{v}"))
        .json(&json!({"tenantId": tenant, "principalType": "group", "clientIds": [app]}))
        .send()
        .await;
    let member = uuid_like();
    let mut claims = issuer.claims(API_AUDIENCE, &member, &app, "clients/VoIP");
    claims["groups"] = json!([group]);
    let r = exchange_with_bearer(&s, &exchange, &issuer.mint(&claims)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let stranger = issuer.mint(&issuer.claims(API_AUDIENCE, &uuid_like(), &app, "clients/VoIP"));
    let r = exchange_with_bearer(&s, &exchange, &stranger).await;
    r.assert_error(403, "Forbidden");
    // Only in the preview.
    let r = s.send(Method::GET, "/access/entra/assignments?api-version=2025-06-30").await;
    r.assert_error(400, "UnsupportedApiVersion");
}
