//! Access key regeneration and signing key rotation on a running service.

use acs_identity_core::hmac::KeyName;
use acs_identity_core::token::SigningAlgorithm;
use acs_identity_server::state::{new_signing_key, random_key};
use acs_identity_testkit::{jwt_header, TestServer};
use reqwest::{Method, StatusCode};

const CREATE: &str = "/identities?api-version=2023-10-01";

#[tokio::test]
async fn regenerated_keys_are_refused_and_their_tokens_revoked() {
    let s = TestServer::start().await;
    let old_primary = s.key(KeyName::Primary);
    let secondary = s.key(KeyName::Secondary);
    let id = s.create_user().await;
    let by_primary = s.issue_token(&id).await;
    let by_secondary = {
        let path = format!(
            "/identities/{}/:issueAccessToken?api-version=2023-10-01",
            acs_identity_testkit::encode_id(&id)
        );
        let r = s
            .request(Method::POST, &path)
            .key(&secondary)
            .json(&serde_json::json!({"scopes": ["chat"]}))
            .send()
            .await;
        r.json["token"].as_str().unwrap().to_owned()
    };

    let store = s.inner().state().store();
    let rec = store.regenerate_access_key(KeyName::Primary, random_key().unwrap()).await.unwrap();
    assert_eq!(rec.version, 2);
    // The next request sees the change: the keys' version is read before each one.
    assert_eq!(
        s.request(Method::POST, CREATE).key(&old_primary).send().await.status,
        StatusCode::UNAUTHORIZED,
        "the old primary key still works"
    );
    let new_primary = s.key(KeyName::Primary);
    assert_ne!(new_primary, old_primary);
    assert_eq!(
        s.request(Method::POST, CREATE).key(&new_primary).send().await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        s.request(Method::POST, CREATE).key(&secondary).send().await.status,
        StatusCode::CREATED
    );
    // Tokens asked for with the old primary key stop validating; the secondary's do not.
    assert_eq!(s.validate(&by_primary).await["reason"], "revoked");
    assert_eq!(s.validate(&by_secondary).await["valid"], true);
    assert!(s.connection_string().contains(&new_primary));
}

#[tokio::test]
async fn rotated_signing_keys_sign_new_tokens_and_old_ones_still_verify() {
    let s = TestServer::start().await;
    let id = s.create_user().await;
    let old = s.issue_token(&id).await;
    let old_kid = jwt_header(&old)["kid"].as_str().unwrap().to_owned();
    let state = s.inner().state();
    let now = acs_identity_core::Clock::now(state.clock());
    let rec = new_signing_key(SigningAlgorithm::Es256, now).unwrap();
    let new_kid = rec.kid.clone();
    state.store().add_signing_key(rec).await.unwrap();
    // The next token is signed with it.
    assert_eq!(jwt_header(&s.issue_token(&id).await)["kid"], new_kid.as_str(), "still {old_kid}");
    assert_eq!(s.validate(&old).await["valid"], true);
    let jwks = s.request(Method::GET, "/.well-known/jwks.json").unsigned().send().await.json;
    let kids: Vec<&str> =
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()), "{kids:?}");
}
