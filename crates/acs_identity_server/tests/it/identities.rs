//! Create, get, delete, issue and revoke across api-versions.

use acs_identity_core::ApiVersion;
use acs_identity_testkit::{
    encode_id, identity_path, issue_path, jwt_payload, revoke_path, TestResponse, TestServer,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn is_acs_datetime(s: &str) -> bool {
    // 2022-09-07T14:34:56.2714874+00:00; trailing zeros of the fraction left out, as ACS does.
    let b = s.as_bytes();
    let fraction = s.get(19..s.len().saturating_sub(6)).unwrap_or("x");
    b.len() >= 25
        && b[4] == b'-'
        && b[10] == b'T'
        && (fraction.is_empty()
            || (fraction.len() <= 8
                && fraction.starts_with('.')
                && fraction[1..].bytes().all(|c| c.is_ascii_digit())
                && !fraction.ends_with('0')))
        && s.ends_with("+00:00")
        && time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

/// `POST /identities/{id}/:issueAccessToken` for the raw id `id` with `api_version`.
async fn issue(s: &TestServer, id: &str, api_version: &str, body: Value) -> TestResponse {
    let e = encode_id(id);
    s.post(&format!("/identities/{e}/:issueAccessToken?api-version={api_version}"), body).await
}

#[tokio::test]
async fn create_user_in_every_version_has_the_spec_shape() {
    let s = TestServer::start().await;
    for v in ApiVersion::ALL {
        let r = s
            .request(Method::POST, &format!("/identities?api-version={v}"))
            .header("x-ms-client-request-id", "4f0f6a3e-0000-4000-8000-000000000001")
            .send()
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{v}: {}", r.text);
        let id = r.json["identity"]["id"].as_str().unwrap();
        assert!(id.starts_with(&format!("8:acs:{}_", s.resource_id())), "{id}");
        assert_eq!(r.json.as_object().unwrap().len(), 1, "{v}: only identity: {}", r.text);
        assert_eq!(r.json["identity"].as_object().unwrap().len(), 1, "{v}: {}", r.text);
        assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));
        assert_eq!(
            r.header("x-ms-client-request-id"),
            Some("4f0f6a3e-0000-4000-8000-000000000001")
        );
        assert!(r.header("ms-cv").is_some_and(|cv| cv.ends_with(".0") && cv.len() > 10));
        let supported = r.header("api-supported-versions").unwrap();
        assert!(
            supported.contains("2021-03-07") && supported.contains("2026-09-23"),
            "{supported}"
        );
    }
}

#[tokio::test]
async fn create_user_and_token_in_one_request() {
    let s = TestServer::start().await;
    let body = json!({"createTokenWithScopes": ["chat", "voip"], "expiresInMinutes": 60});
    let r = s.post("/identities?api-version=2023-10-01", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let token = r.json["accessToken"]["token"].as_str().unwrap();
    let expires_on = r.json["accessToken"]["expiresOn"].as_str().unwrap();
    assert!(is_acs_datetime(expires_on), "{expires_on}");
    let claims = jwt_payload(token);
    assert_eq!(claims["acsScope"], "chat,voip");
    assert_eq!(claims["scp"], 1792);
    assert_eq!(claims["resourceId"], s.resource_id());
    assert_eq!(claims["resourceLocation"], "unitedstates");
    assert_eq!(claims["rgn"], "us");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
    let id = r.json["identity"]["id"].as_str().unwrap();
    assert_eq!(format!("8:{}", claims["skypeid"].as_str().unwrap()), id);
    let exp =
        time::OffsetDateTime::parse(expires_on, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert_eq!(exp.unix_timestamp(), claims["exp"].as_i64().unwrap());
}

#[tokio::test]
async fn create_with_empty_scopes_gives_no_token() {
    let s = TestServer::start().await;
    let r =
        s.post("/identities?api-version=2023-10-01", json!({"createTokenWithScopes": []})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.json.get("accessToken").is_none(), "{}", r.text);
}

#[tokio::test]
async fn lifetime_bounds_and_versions() {
    let s = TestServer::start().await;
    let id = s.create_user().await;
    for (minutes, ok) in
        [(60, true), (1440, true), (59, false), (1441, false), (0, false), (-5, false)]
    {
        let r =
            issue(&s, &id, "2023-10-01", json!({"scopes": ["chat"], "expiresInMinutes": minutes}))
                .await;
        if ok {
            assert_eq!(r.status, StatusCode::OK, "{minutes}: {}", r.text);
            let c = jwt_payload(r.json["token"].as_str().unwrap());
            assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), minutes * 60);
        } else {
            let msg = r.assert_error(400, "ValidationError");
            assert_eq!(
                msg,
                format!("ExpiresInMinutes value {minutes} is invalid. Value must be within the [60, 1440] interval.")
            );
            assert_eq!(r.json["error"]["target"], "ExpiresInMinutes");
        }
    }
    // Before 2022-10-01 the field does not exist: ignored, tokens live 24 h.
    let r =
        issue(&s, &id, "2022-06-01", json!({"scopes": ["chat"], "expiresInMinutes": 1441})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let c = jwt_payload(r.json["token"].as_str().unwrap());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 86400);
    // Same rule on create.
    let r = s
        .post(
            "/identities?api-version=2022-10-01",
            json!({"createTokenWithScopes": ["chat"], "expiresInMinutes": 59}),
        )
        .await;
    r.assert_error(400, "ValidationError");
}

#[tokio::test]
async fn scope_errors_match_acs() {
    let s = TestServer::start().await;
    let id = s.create_user().await;
    let r = issue(&s, &id, "2023-10-01", json!({"scopes": []})).await;
    assert_eq!(
        r.assert_error(400, "ValidationError"),
        "Invalid scopes - Scopes field is required."
    );
    assert_eq!(r.json["error"]["target"], "scopes");
    for body in [json!({}), json!({"scopes": null})] {
        let r = issue(&s, &id, "2023-10-01", body).await;
        assert_eq!(r.assert_error(400, "ValidationError"), "Scopes: The Scopes field is required.");
        assert_eq!(r.json["error"]["target"], "Scopes");
    }
    let r = issue(&s, &id, "2023-10-01", json!({"scopes": ["email"]})).await;
    r.assert_error(400, "ValidationError");
    let r = issue(&s, &id, "2023-10-01", json!({"scopes": "chat"})).await;
    r.assert_error(400, "ValidationError");
    // The join scopes arrived in 2023-10-01.
    let r = issue(&s, &id, "2022-10-01", json!({"scopes": ["chat.join"]})).await;
    r.assert_error(400, "ValidationError");
    for scope in ["chat", "voip", "chat.join", "chat.join.limited", "voip.join"] {
        let r = issue(&s, &id, "2023-10-01", json!({"scopes": [scope]})).await;
        assert_eq!(r.status, StatusCode::OK, "{scope}: {}", r.text);
        assert_eq!(jwt_payload(r.json["token"].as_str().unwrap())["acsScope"], scope);
    }
}

#[tokio::test]
async fn ids_may_arrive_encoded_or_raw() {
    let s = TestServer::start().await;
    let id = s.create_user().await;
    for path_id in [encode_id(&id), id.clone()] {
        let r = s
            .post(
                &format!("/identities/{path_id}/:issueAccessToken?api-version=2023-10-01"),
                json!({"scopes": ["voip"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path_id}: {}", r.text);
    }
}

#[tokio::test]
async fn foreign_and_unknown_ids_are_not_owned() {
    let s = TestServer::start().await;
    let ours_unknown = format!("8:acs:{}_00000000-0000-7000-8000-000000000000", s.resource_id());
    for id in [
        "8:acs:2dee53b4-368b-45b4-ab52-8493fb117652_00000005-14a2-493b-8a72-5a3a0d000081",
        "8:acs:invalid",
        "4:+14255550123",
        "garbage",
        ours_unknown.as_str(),
    ] {
        let r = s.post(&issue_path(id), json!({"scopes": ["chat"]})).await;
        let msg = r.assert_error(401, "IdentityNotOwned");
        assert_eq!(msg, "Provided identity doesn't belong to the resource.");
        let r = s.send(Method::POST, &revoke_path(id)).await;
        r.assert_error(401, "IdentityNotOwned");
        let r = s.send(Method::DELETE, &identity_path(id, "2023-10-01")).await;
        r.assert_error(401, "IdentityNotOwned");
    }
}

#[tokio::test]
async fn delete_is_idempotent_and_deleted_users_get_404() {
    let s = TestServer::start().await;
    let id = s.create_user().await;
    for _ in 0..2 {
        let r = s.send(Method::DELETE, &identity_path(&id, "2023-10-01")).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        assert!(r.text.is_empty());
    }
    let r = s.post(&issue_path(&id), json!({"scopes": ["chat"]})).await;
    r.assert_error(404, "IdentityNotFound");
    let r = s.send(Method::POST, &revoke_path(&id)).await;
    r.assert_error(404, "IdentityNotFound");
    let r = s.send(Method::GET, &identity_path(&id, "2025-03-02-preview")).await;
    r.assert_error(404, "IdentityNotFound");
}

#[tokio::test]
async fn revoke_answers_204_with_no_body() {
    let s = TestServer::start().await;
    let id = s.create_user().await;
    let r = s
        .send(
            Method::POST,
            &format!("/identities/{}/:revokeAccessTokens?api-version=2021-03-07", encode_id(&id)),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.text.is_empty());
    assert!(r.header("api-supported-versions").is_some());
}

#[tokio::test]
async fn get_identity_and_custom_ids_in_the_preview() {
    let s = TestServer::start().await;
    let v = "api-version=2025-03-02-preview";
    let r = s.create_user_with_custom_id("sally@contoso.com").await;
    let id = r.json["identity"]["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json["identity"]["customId"], "sally@contoso.com");
    assert!(is_acs_datetime(r.json["identity"]["lastTokenIssuedAt"].as_str().unwrap()));

    // The same custom id returns the same identity.
    let again = s.post(&format!("/identities?{v}"), json!({"customId": "sally@contoso.com"})).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.json["identity"]["id"], id.as_str());

    let g = s.send(Method::GET, &format!("/identities/{}?{v}", encode_id(&id))).await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.text);
    assert_eq!(g.json["id"], id.as_str());
    assert_eq!(g.json["customId"], "sally@contoso.com");
    assert!(is_acs_datetime(g.json["lastTokenIssuedAt"].as_str().unwrap()));

    // GET exists only in the preview.
    let g = s
        .send(Method::GET, &format!("/identities/{}?api-version=2025-06-30", encode_id(&id)))
        .await;
    g.assert_error(400, "UnsupportedApiVersion");

    // Older versions ignore customId: a new identity each time, no extra fields.
    let a = s
        .post("/identities?api-version=2023-10-01", json!({"customId": "sally@contoso.com"}))
        .await;
    assert_ne!(a.json["identity"]["id"], id.as_str());
    assert!(a.json["identity"].get("customId").is_none());

    for (bad, why) in
        [(json!(""), "empty"), (json!("x".repeat(257)), "too long"), (json!(5), "not a string")]
    {
        let r = s.post(&format!("/identities?{v}"), json!({"customId": bad})).await;
        r.assert_error(400, "ValidationError");
        assert_eq!(r.json["error"]["target"], "customId", "{why}");
    }
    let ok256 = s.post(&format!("/identities?{v}"), json!({"customId": "é".repeat(256)})).await;
    assert_eq!(ok256.status, StatusCode::CREATED, "{}", ok256.text);

    // After deletion the custom id is free again.
    s.send(Method::DELETE, &format!("/identities/{}?{v}", encode_id(&id))).await;
    let fresh = s.post(&format!("/identities?{v}"), json!({"customId": "sally@contoso.com"})).await;
    assert_ne!(fresh.json["identity"]["id"], id.as_str());
}

#[tokio::test]
async fn parallel_creates_all_succeed_and_are_distinct() {
    let s = TestServer::start().await;
    let futures = (0..40).map(|_| s.create_user());
    let ids: Vec<String> = futures::future::join_all(futures).await;
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 40);
}

#[tokio::test]
async fn plain_http_listener_serves_the_same_api() {
    let s = TestServer::start().await;
    let r = s.request(Method::POST, "/identities?api-version=2023-10-01").plain_http().send().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}
