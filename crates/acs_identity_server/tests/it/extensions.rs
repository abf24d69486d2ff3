//! This service's extensions: the identity list, the resource's facts, the activity
//! counters, their OpenAPI document, and the web console's files.

use acs_identity_testkit::{encode_id, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Path and query of an absolute `nextLink`.
fn path_of(link: &str) -> String {
    let rest = link.split_once("://").expect("absolute link").1;
    rest[rest.find('/').expect("a path")..].to_owned()
}

#[tokio::test]
async fn the_identity_list_pages_newest_first_with_states() {
    let s = TestServer::start().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(s.create_user().await);
    }
    s.issue_token(&ids[0]).await;
    let revoke =
        format!("/identities/{}/:revokeAccessTokens?api-version=2023-10-01", encode_id(&ids[1]));
    assert_eq!(s.send(Method::POST, &revoke).await.status, StatusCode::NO_CONTENT);
    let delete = format!("/identities/{}?api-version=2023-10-01", encode_id(&ids[2]));
    assert_eq!(s.send(Method::DELETE, &delete).await.status, StatusCode::NO_CONTENT);

    let mut listed: Vec<Value> = Vec::new();
    let mut path = "/identities?maxpagesize=2".to_owned();
    let mut pages = 0;
    loop {
        let r = s.send(Method::GET, &path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let page = r.json["value"].as_array().unwrap();
        assert!(page.len() <= 2);
        listed.extend(page.iter().cloned());
        pages += 1;
        match r.json["nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&s.endpoint()), "{next}");
                path = path_of(next);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let order: Vec<&str> = listed.iter().map(|u| u["id"].as_str().unwrap()).collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(order, newest_first);
    let find = |id: &str| listed.iter().find(|u| u["id"] == id).unwrap().clone();
    assert_eq!(find(&ids[0])["state"], "active");
    assert!(find(&ids[0])["lastTokenIssuedAt"].is_string());
    assert_eq!(find(&ids[1])["state"], "revoked");
    assert_eq!(find(&ids[1])["generation"], 1);
    assert_eq!(find(&ids[2])["state"], "deleted");
    assert!(find(&ids[2])["deletedAt"].is_string());
    assert!(find(&ids[3])["createdAt"].is_string());
    assert!(find(&ids[3]).get("lastTokenIssuedAt").is_none());

    // Over plain HTTP the next link says so.
    let r = s.request(Method::GET, "/identities?maxpagesize=1").plain_http().send().await;
    assert!(r.json["nextLink"].as_str().unwrap().starts_with("http://"), "{}", r.text);

    // ACS's create on the same path is unchanged.
    let r = s.send(Method::POST, "/identities?api-version=2023-10-01").await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn the_identity_list_refuses_bad_paging_and_unsigned_requests() {
    let s = TestServer::start().await;
    for path in
        ["/identities?maxpagesize=0", "/identities?maxpagesize=1001", "/identities?maxpagesize=x"]
    {
        let r = s.send(Method::GET, path).await;
        assert_eq!(r.assert_error(400, "ValidationError"), "maxpagesize must be within [1, 1000].");
        assert_eq!(r.json["error"]["target"], "maxpagesize");
    }
    for token in ["x", "01a24c29-1dec-74d6-8be8", "%00"] {
        let r = s.send(Method::GET, &format!("/identities?continuationToken={token}")).await;
        r.assert_error(400, "ValidationError");
        assert_eq!(r.json["error"]["target"], "continuationToken");
    }
    for path in ["/identities", "/resource", "/activity"] {
        let r = s.request(Method::GET, path).unsigned().send().await;
        r.assert_error(401, "Denied");
    }
}

#[tokio::test]
async fn resource_and_activity_describe_the_node() {
    let s = TestServer::start().await;
    let user = s.create_user().await;
    s.issue_token(&user).await;
    let r = s.send(Method::GET, "/resource").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["resourceId"], s.resource_id().as_str());
    assert_eq!(r.json["dataLocation"], "unitedstates");
    assert_eq!(r.json["identities"], 1);
    assert_eq!(r.json["jwks"], "/.well-known/jwks.json");
    let keys = r.json["signingKeys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["alg"], "ES256");
    let jwks = s.request(Method::GET, "/.well-known/jwks.json").unsigned().send().await;
    assert_eq!(keys[0]["kid"], jwks.json["keys"][0]["kid"]);
    assert!(!r.text.contains(&s.key(acs_identity_core::hmac::KeyName::Primary)));

    let r = s.send(Method::GET, "/activity").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["intervalSeconds"], 5);
    let samples = r.json["samples"].as_array().unwrap();
    let total = |field: &str| samples.iter().map(|x| x[field].as_u64().unwrap()).sum::<u64>();
    // create, issue, resource; not the activity request itself.
    assert_eq!(total("requests"), 3, "{}", r.text);
    assert_eq!(total("tokensIssued"), 1, "{}", r.text);
    assert_eq!(total("errors"), 0, "{}", r.text);
    let by_op = &r.json["byOperation"];
    assert_eq!(
        by_op["create_identity"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .sum::<u64>(),
        1
    );
    assert!(by_op.get("get_activity").is_none());
}

#[tokio::test]
async fn the_extensions_document_describes_every_extension_route() {
    let s = TestServer::start().await;
    let r = s.request(Method::GET, "/openapi/extensions.json").unsigned().send().await;
    assert_eq!(r.status, StatusCode::OK);
    let paths = r.json["paths"].as_object().unwrap();
    for op in acs_identity_server::operation::Operation::ALL {
        let spec = op.spec();
        if spec.versions.is_none() {
            let method = spec.method.as_str().to_ascii_lowercase();
            assert!(
                paths.get(spec.path).and_then(|p| p.get(&method)).is_some(),
                "{op:?} is not documented"
            );
        }
    }
}

#[tokio::test]
async fn the_console_is_served_with_strict_headers() {
    let s = TestServer::start().await;
    for (path, kind) in [
        ("/console/", "text/html"),
        ("/console/console.js", "text/javascript"),
        ("/console/console.css", "text/css"),
    ] {
        for plain in [false, true] {
            let mut req = s.request(Method::GET, path).unsigned();
            if plain {
                req = req.plain_http();
            }
            let r = req.send().await;
            assert_eq!(r.status, StatusCode::OK, "{path}");
            assert!(r.header("content-type").unwrap().starts_with(kind), "{path}");
            assert_eq!(r.header("cache-control"), Some("no-store"));
            assert_eq!(r.header("x-frame-options"), Some("DENY"));
            let csp = r.header("content-security-policy").unwrap();
            assert!(
                csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"),
                "{csp}"
            );
            assert!(!csp.contains("unsafe"), "{csp}");
        }
    }
    let html = s.request(Method::GET, "/console/").unsigned().send().await.text;
    assert!(!html.contains("<script>") && !html.contains(" style="), "no inline script or style");
    for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!html.contains(attr), "the page loads nothing from another origin");
    }
    // `/console` redirects to `/console/` (the test client follows redirects).
    let r = s.request(Method::GET, "/console").unsigned().send().await;
    assert_eq!((r.status, r.text), (StatusCode::OK, html));
    s.request(Method::GET, "/console/nothing.js")
        .unsigned()
        .send()
        .await
        .assert_error(404, "NotFound");
}
