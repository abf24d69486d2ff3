//! Durability across restarts and graceful shutdown, and a start that cannot reach its
//! database.

use std::time::{Duration, Instant};

use acs_identity_core::hmac::KeyName;
use acs_identity_testkit::{encode_id, TestServer};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn restart_keeps_resource_keys_users_and_revocations() {
    let s = TestServer::start().await;
    let resource = s.resource_id();
    let key = s.key(KeyName::Primary);
    let id = s.create_user().await;
    let old = s.issue_token(&id).await;
    s.send(
        Method::POST,
        &format!("/identities/{}/:revokeAccessTokens?api-version=2023-10-01", encode_id(&id)),
    )
    .await;
    let new = s.issue_token(&id).await;

    let s = s.restart().await;
    assert_eq!(s.resource_id(), resource);
    assert_eq!(s.key(KeyName::Primary), key);
    assert_eq!(s.validate(&old).await["reason"], "revoked");
    assert_eq!(s.validate(&new).await["valid"], true);
    let r = s
        .post(
            &format!("/identities/{}/:issueAccessToken?api-version=2023-10-01", encode_id(&id)),
            serde_json::json!({"scopes": ["voip"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn acknowledged_writes_survive_a_shutdown_under_load() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            // Until the listener goes away.
            while let Some(r) =
                s.request(Method::POST, "/identities?api-version=2023-10-01").try_send().await
            {
                if r.status == StatusCode::CREATED {
                    ids.push(r.json["identity"]["id"].as_str().unwrap().to_owned());
                }
            }
            ids
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.inner().begin_shutdown();
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    assert!(acknowledged.len() >= 4, "load ran: {}", acknowledged.len());
    let s = std::sync::Arc::try_unwrap(s).expect("sole owner").restart_fresh_ports().await;
    for id in &acknowledged {
        let r = s
            .post(
                &format!("/identities/{}/:issueAccessToken?api-version=2023-10-01", encode_id(id)),
                serde_json::json!({"scopes": ["chat"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{id} lost: {}", r.text);
    }
}

#[tokio::test]
async fn every_operation_in_every_version() {
    let s = TestServer::start().await;
    for v in acs_identity_core::ApiVersion::ALL {
        let id = s.create_user().await;
        let e = encode_id(&id);
        let r = s
            .post(
                &format!("/identities/{e}/:issueAccessToken?api-version={v}"),
                serde_json::json!({"scopes": ["voip"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{v}: {}", r.text);
        assert_eq!(r.json.as_object().unwrap().len(), 2, "{v}: token and expiresOn only");
        let r = s
            .send(Method::POST, &format!("/identities/{e}/:revokeAccessTokens?api-version={v}"))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{v}");
        let r = s.send(Method::DELETE, &format!("/identities/{e}?api-version={v}")).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{v}");
    }
}

/// A PostgreSQL server that is unreachable when the service starts: the start fails with
/// a message naming the database (without its password) rather than hanging.
#[tokio::test]
async fn start_fails_cleanly_without_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let config = acs_identity_server::Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: Some("postgres://acs:s3cret@127.0.0.1:1/acs".into()),
        ..Default::default()
    };
    let started = Instant::now();
    let e = acs_identity_server::serve::Server::start(&config).await.expect_err("no database");
    let message = format!("{e:#}");
    assert!(
        message.contains("PostgreSQL database postgres://acs:***@127.0.0.1:1/acs"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}
