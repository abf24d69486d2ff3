//! `GET /openapi/{api-version}.json`: the published document of every served version,
//! without authentication, and every operation it describes is routed.

use acs_identity_core::ApiVersion;
use acs_identity_testkit::{encode_id, uuid_like, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[tokio::test]
async fn every_served_version_has_its_document_and_every_operation_is_routed() {
    let s = TestServer::start().await;
    let user = s.create_user().await;
    let mut operations = 0;
    for version in ApiVersion::ALL {
        let v = version.as_str();
        // No authentication, over HTTPS and plain HTTP alike.
        let r = s.request(Method::GET, &format!("/openapi/{v}.json")).unsigned().send().await;
        assert_eq!(r.status, StatusCode::OK, "{v}: {}", r.text);
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")));
        let doc = &r.json;
        assert_eq!(doc["swagger"], "2.0", "{v}");
        assert_eq!(doc["info"]["version"], v);
        let plain = s
            .request(Method::GET, &format!("/openapi/{v}.json"))
            .unsigned()
            .plain_http()
            .send()
            .await;
        assert_eq!(plain.json, r.json, "{v}");

        // Each operation answers as an existing route does without credentials: 401, never
        // 404 or 405.
        let paths = doc["paths"].as_object().expect("paths");
        for (path, item) in paths {
            let concrete = path
                .replace("{id}", &encode_id(&user))
                .replace("{tenantId}", &uuid_like())
                .replace("{objectId}", &uuid_like());
            for method in item.as_object().expect("path item").keys() {
                let Ok(method) = method.to_ascii_uppercase().parse::<Method>() else { continue };
                if method == Method::OPTIONS || method.as_str() == "PARAMETERS" {
                    continue;
                }
                let r = s
                    .request(method.clone(), &format!("{concrete}?api-version={v}"))
                    .unsigned()
                    .body(b"{}".to_vec())
                    .send()
                    .await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{v} {method} {path}: {}", r.text);
                assert!(
                    matches!(
                        r.json["error"]["code"].as_str(),
                        Some("Denied" | "InvalidAccessToken")
                    ),
                    "{v} {method} {path}: {}",
                    r.text
                );
                operations += 1;
            }
        }
    }
    eprintln!("openapi: {} documents, {operations} operations routed", ApiVersion::ALL.len());
    assert!(operations >= 60, "only {operations} operations");
}

#[tokio::test]
async fn unknown_versions_get_404_with_the_acs_body() {
    let s = TestServer::start().await;
    for file in [
        "2020-07-20-preview2.json",
        "2023-08-01.json",
        "2099-01-01.json",
        "latest.json",
        "2023-10-01",
        "2023-10-01.yaml",
        "..%2F..%2FCargo.toml",
    ] {
        let r = s.request(Method::GET, &format!("/openapi/{file}")).unsigned().send().await;
        let msg = r.assert_error(404, "NotFound");
        assert!(msg.contains("OpenAPI"), "{file}: {msg}");
    }
    let r = s.request(Method::GET, "/openapi/").unsigned().send().await;
    r.assert_error(404, "NotFound");
    let r = s.request(Method::POST, "/openapi/2023-10-01.json").unsigned().send().await;
    r.assert_error(405, "MethodNotAllowed");
    let doc: Value = s
        .request(Method::GET, &format!("/openapi/{}.json", ApiVersion::LATEST.as_str()))
        .unsigned()
        .send()
        .await
        .json;
    assert_eq!(doc["info"]["version"], ApiVersion::LATEST.as_str());
}
