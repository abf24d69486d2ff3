//! End-to-end: the client against the real service, over HTTPS (development CA) and plain HTTP.
//!
//! Every test starts its own service from `acs_identity_testkit` on `127.0.0.1:0`, so the tests
//! share nothing and can run in any order.

use acs_common::clock::{Clock as _, SystemClock};
use std::collections::HashSet;
use std::sync::Arc;

use acs_identity::acs_common::connection_string::ConnectionString;
use acs_identity::acs_common::transport::{Http1Transport, Http1TransportOptions};
use acs_identity::clients::{DEFAULT_API_VERSION, SUPPORTED_API_VERSIONS};
use acs_identity::models::{
    CommunicationIdentityClientCreateUserAndTokenOptions,
    CommunicationIdentityClientCreateUserOptions, CommunicationIdentityClientGetTokenOptions,
    CommunicationTokenScope, CommunicationUserDetail, CommunicationUserIdentifierAndToken,
    GetTokenForTeamsUserOptions,
};
use acs_identity::{
    CommunicationIdentityClient, CommunicationIdentityClientOptions, CommunicationKeyCredential,
    CommunicationUserIdentifier,
};
use acs_identity_testkit::{jwt_payload, TestServer};
use azure_core::error::{Error, ErrorKind, ErrorResponse};
use azure_core::http::{StatusCode, Transport};
use azure_core::time::{Duration, OffsetDateTime};

mod authority;
mod entra;
mod users;

const PREVIEW: &str = "2025-03-02-preview";
const ALL_SCOPES: [CommunicationTokenScope; 5] = [
    CommunicationTokenScope::Chat,
    CommunicationTokenScope::VoIP,
    CommunicationTokenScope::ChatJoin,
    CommunicationTokenScope::ChatJoinLimited,
    CommunicationTokenScope::VoIPJoin,
];
/// A well-formed id of some other resource.
const FOREIGN_ID: &str =
    "8:acs:11111111-2222-3333-4444-555555555555_00000000-0000-0000-0000-000000000001";

/// A list's items page by page: the size of each page, and every item in order.
async fn pages<P>(pager: azure_core::http::Pager<P>) -> (Vec<usize>, Vec<P::Item>)
where
    P: azure_core::http::pager::Page + serde::de::DeserializeOwned + Send + 'static,
{
    use futures::TryStreamExt as _;
    let mut pages = pager.into_pages();
    let (mut sizes, mut items) = (Vec::new(), Vec::new());
    while let Some(page) = pages.try_next().await.unwrap() {
        let page: Vec<_> = page.into_model().unwrap().into_items().await.unwrap().collect();
        sizes.push(page.len());
        items.extend(page);
    }
    (sizes, items)
}

/// Client options whose transport, the client's default `Http1Transport`, also trusts the
/// service's development CA.
fn https_options(server: &TestServer, api_version: &str) -> CommunicationIdentityClientOptions {
    let mut transport = Http1TransportOptions::default();
    transport.add_root_certificates_pem(&std::fs::read(server.ca_path()).unwrap()).unwrap();
    let mut options = CommunicationIdentityClientOptions {
        api_version: api_version.to_owned(),
        ..Default::default()
    };
    options.client_options.transport =
        Some(Transport::new(Arc::new(Http1Transport::with_options(transport))));
    options
}

/// Like [`https_options`], with `azure_core`'s `reqwest` transport: the one the client uses
/// when a proxy is configured.
fn reqwest_https_options(server: &TestServer) -> CommunicationIdentityClientOptions {
    let pem = std::fs::read(server.ca_path()).unwrap();
    let ca = azure_core_reqwest::Certificate::from_pem(&pem).unwrap();
    let http = azure_core_reqwest::Client::builder().tls_certs_merge([ca]).build().unwrap();
    let mut options = CommunicationIdentityClientOptions::default();
    options.client_options.transport = Some(Transport::new(Arc::new(http)));
    options
}

/// A client from the printed connection string, over HTTPS.
fn https_client_with(server: &TestServer, api_version: &str) -> CommunicationIdentityClient {
    CommunicationIdentityClient::from_connection_string(
        &server.connection_string(),
        Some(https_options(server, api_version)),
    )
    .unwrap()
}

fn https_client(server: &TestServer) -> CommunicationIdentityClient {
    https_client_with(server, DEFAULT_API_VERSION)
}

/// A fresh service, and a client of it over HTTPS with `api_version`.
async fn serve_https(api_version: &str) -> (TestServer, CommunicationIdentityClient) {
    let server = TestServer::start().await;
    let client = https_client_with(&server, api_version);
    (server, client)
}

/// The primary access key, from the connection string.
fn primary_key(server: &TestServer) -> String {
    let cs = ConnectionString::parse(&server.connection_string()).unwrap();
    cs.access_key().secret().to_owned()
}

/// A client on the plain-HTTP listener with an endpoint and key credential.
fn http_client(server: &TestServer) -> CommunicationIdentityClient {
    let credential = CommunicationKeyCredential::new(primary_key(server)).unwrap();
    CommunicationIdentityClient::with_key_credential(&server.http_endpoint(), credential, None)
        .unwrap()
}

#[track_caller]
fn assert_http_error(error: &Error, expected_status: StatusCode, expected_code: &str) {
    match error.kind() {
        ErrorKind::HttpResponse { status, error_code, .. } => {
            assert_eq!(*status, expected_status, "{error}");
            assert_eq!(error_code.as_deref(), Some(expected_code), "{error}");
        }
        other => panic!("expected an HTTP response error, got {other:?}: {error}"),
    }
}

/// The `target` of the service's error body.
fn error_target(error: Error) -> Option<String> {
    ErrorResponse::try_from(error).unwrap().error.unwrap().target
}

/// Asserts that `actual` is `expected` from now, within a few seconds of test run time.
#[track_caller]
fn assert_expires_in(actual: OffsetDateTime, expected: Duration) {
    let remaining = actual - SystemClock.now();
    assert!(
        (expected - Duration::minutes(1)..=expected).contains(&remaining),
        "expires in {remaining}, expected about {expected}"
    );
}

fn minutes(n: i64) -> Option<CommunicationIdentityClientGetTokenOptions<'static>> {
    Some(CommunicationIdentityClientGetTokenOptions {
        expires_in: Some(Duration::minutes(n)),
        ..Default::default()
    })
}

/// Creates a user; panics when that fails.
async fn new_user(client: &CommunicationIdentityClient) -> CommunicationUserIdentifier {
    client.create_user(None).await.unwrap().into_model().unwrap()
}

/// Issuing a `chat` token to `user` and revoking its tokens both fail with `status` and its
/// ACS error code (`IdentityNotOwned` for 401, `IdentityNotFound` for 404); the issue error
/// says `message`.
async fn assert_issue_and_revoke_refused(
    client: &CommunicationIdentityClient,
    user: &CommunicationUserIdentifier,
    status: StatusCode,
    message: &str,
) {
    let code = match status {
        StatusCode::Unauthorized => "IdentityNotOwned",
        StatusCode::NotFound => "IdentityNotFound",
        other => panic!("no identity error has status {other}"),
    };
    let issue = client.get_token(user, &[CommunicationTokenScope::Chat], None).await.unwrap_err();
    assert_http_error(&issue, status, code);
    assert_eq!(issue.to_string(), message);
    let revoke = client.revoke_tokens(user, None).await.unwrap_err();
    assert_http_error(&revoke, status, code);
}

/// Reads a user's details; panics when that fails.
async fn user_detail(
    client: &CommunicationIdentityClient,
    user: &CommunicationUserIdentifier,
) -> CommunicationUserDetail {
    client.get_user_detail(user, None).await.unwrap().into_model().unwrap()
}

/// Creates a user with a token for `scope`; panics when that fails.
async fn new_user_with_token(
    client: &CommunicationIdentityClient,
    scope: CommunicationTokenScope,
    options: Option<CommunicationIdentityClientCreateUserAndTokenOptions<'_>>,
) -> CommunicationUserIdentifierAndToken {
    client.create_user_and_token(&[scope], options).await.unwrap().into_model().unwrap()
}

// ---- create ---------------------------------------------------------------------------------

#[tokio::test]
async fn create_user_over_https_and_plain_http_and_with_the_reqwest_transport() {
    let server = TestServer::start().await;
    let prefix = format!("8:acs:{}_", server.resource_id());
    let reqwest = CommunicationIdentityClient::from_connection_string(
        &server.connection_string(),
        Some(reqwest_https_options(&server)),
    )
    .unwrap();
    for client in [https_client(&server), http_client(&server), reqwest] {
        let response = client.create_user(None).await.unwrap();
        assert_eq!(response.status(), StatusCode::Created);
        let user = response.into_model().unwrap();
        assert!(user.id.starts_with(&prefix), "{}", user.id);
        // The user exists: a token can be issued for it.
        client.get_token(&user, &[CommunicationTokenScope::Chat], None).await.unwrap();
    }
}

#[tokio::test]
async fn create_user_and_token_with_each_scope() {
    let (server, client) = serve_https(DEFAULT_API_VERSION).await;
    for scope in ALL_SCOPES {
        let result = client
            .create_user_and_token(std::slice::from_ref(&scope), None)
            .await
            .unwrap()
            .into_model()
            .unwrap();
        assert_expires_in(result.access_token.expires_on, Duration::hours(24));
        let token = result.access_token.token.secret();
        let claims = jwt_payload(token);
        assert_eq!(claims["acsScope"], scope.as_str());
        assert_eq!(format!("8:{}", claims["skypeid"].as_str().unwrap()), result.user.id);
        let verdict = server.validate(token).await;
        assert_eq!(verdict["valid"], true, "{verdict}");
        assert_eq!(verdict["identity"]["id"], result.user.id.as_str());
        assert_eq!(verdict["scopes"], serde_json::json!([scope.as_str()]));
    }
    let all = client.create_user_and_token(&ALL_SCOPES, None).await.unwrap().into_model().unwrap();
    let verdict = server.validate(all.access_token.token.secret()).await;
    assert_eq!(
        verdict["scopes"],
        serde_json::json!(["chat", "voip", "chat.join", "chat.join.limited", "voip.join"])
    );
}

#[tokio::test]
async fn create_user_and_token_with_custom_expiry() {
    let (_server, client) = serve_https(DEFAULT_API_VERSION).await;
    let options = CommunicationIdentityClientCreateUserAndTokenOptions {
        expires_in: Some(Duration::minutes(90)),
        ..Default::default()
    };
    let result = new_user_with_token(&client, CommunicationTokenScope::VoIP, Some(options)).await;
    assert_expires_in(result.access_token.expires_on, Duration::minutes(90));
    let claims = jwt_payload(result.access_token.token.secret());
    assert_eq!(
        claims["exp"].as_i64().unwrap(),
        result.access_token.expires_on.unix_timestamp(),
        "the JWT exp is the response's expiresOn"
    );
}

// ---- get_token ------------------------------------------------------------------------------

#[tokio::test]
async fn get_token_with_60_and_1440_minutes_and_the_default() {
    let (server, client) = serve_https(DEFAULT_API_VERSION).await;
    let user = new_user(&client).await;
    for (options, lifetime) in [
        (minutes(60), Duration::minutes(60)),
        (minutes(1440), Duration::minutes(1440)),
        (None, Duration::minutes(1440)),
    ] {
        let response = client.get_token(&user, &[CommunicationTokenScope::Chat], options).await;
        let response = response.unwrap();
        assert_eq!(response.status(), StatusCode::Ok);
        let token = response.into_model().unwrap();
        assert_expires_in(token.expires_on, lifetime);
        let claims = jwt_payload(token.token.secret());
        assert_eq!(claims["exp"].as_i64().unwrap(), token.expires_on.unix_timestamp());
        assert_eq!(server.validate(token.token.secret()).await["valid"], true);
    }
}

#[tokio::test]
async fn client_rejects_59_and_1441_minutes_before_sending() {
    let (_server, client) = serve_https(PREVIEW).await;
    let user = new_user(&client).await;
    for n in [59, 1441] {
        let error = client
            .get_token(&user, &[CommunicationTokenScope::Chat], minutes(n))
            .await
            .unwrap_err();
        assert!(matches!(error.kind(), ErrorKind::Other), "{error:?}");
        assert!(error.to_string().contains("[1, 24] hours"), "{error}");
        let options = CommunicationIdentityClientCreateUserAndTokenOptions {
            expires_in: Some(Duration::minutes(n)),
            ..Default::default()
        };
        let error = client
            .create_user_and_token(&[CommunicationTokenScope::Chat], Some(options))
            .await
            .unwrap_err();
        assert!(matches!(error.kind(), ErrorKind::Other), "{error:?}");
    }
    // Nothing reached the service: the user never got a token.
    assert_eq!(user_detail(&client, &user).await.last_token_issued_at, None);
}

#[tokio::test]
async fn service_answers_400_for_empty_scopes() {
    let (_server, client) = serve_https(DEFAULT_API_VERSION).await;
    let user = new_user(&client).await;
    let error = client.get_token(&user, &[], None).await.unwrap_err();
    assert_http_error(&error, StatusCode::BadRequest, "ValidationError");
    assert_eq!(error.to_string(), "Invalid scopes - Scopes field is required.");
    assert_eq!(error_target(error).as_deref(), Some("scopes"));
}

#[tokio::test]
async fn foreign_and_unknown_ids_are_401_identity_not_owned() {
    let (server, client) = serve_https(DEFAULT_API_VERSION).await;
    let unknown = format!("8:acs:{}_00000000-0000-0000-0000-00000000abcd", server.resource_id());
    for id in [FOREIGN_ID, unknown.as_str(), "not-an-acs-id"] {
        let user = CommunicationUserIdentifier::new(id);
        let message = "Provided identity doesn't belong to the resource.";
        assert_issue_and_revoke_refused(&client, &user, StatusCode::Unauthorized, message).await;
        let error = client.delete_user(&user, None).await.unwrap_err();
        assert_http_error(&error, StatusCode::Unauthorized, "IdentityNotOwned");
    }
}

// ---- revoke and delete ----------------------------------------------------------------------

#[tokio::test]
async fn revoke_invalidates_earlier_tokens_only() {
    let (server, client) = serve_https(DEFAULT_API_VERSION).await;
    let first = new_user_with_token(&client, CommunicationTokenScope::Chat, None).await;
    let user = first.user;
    let second =
        client.get_token(&user, &[CommunicationTokenScope::VoIP], None).await.unwrap().into_model();
    let second = second.unwrap();

    let response = client.revoke_tokens(&user, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::NoContent);
    for old in [first.access_token.token.secret(), second.token.secret()] {
        let verdict = server.validate(old).await;
        assert_eq!(verdict, serde_json::json!({"valid": false, "reason": "revoked"}));
    }
    let fresh = client.get_token(&user, &[CommunicationTokenScope::Chat], None).await.unwrap();
    let fresh = fresh.into_model().unwrap();
    assert_eq!(server.validate(fresh.token.secret()).await["valid"], true);
}

#[tokio::test]
async fn deleted_user_is_404_identity_not_found() {
    let (server, client) = serve_https(PREVIEW).await;
    let created = new_user_with_token(&client, CommunicationTokenScope::Chat, None).await;
    let user = created.user;
    let response = client.delete_user(&user, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::NoContent);

    let message = "The identity has been deleted.";
    assert_issue_and_revoke_refused(&client, &user, StatusCode::NotFound, message).await;
    let error = client.get_user_detail(&user, None).await.unwrap_err();
    assert_http_error(&error, StatusCode::NotFound, "IdentityNotFound");
    // Deleting again is idempotent.
    let again = client.delete_user(&user, None).await.unwrap();
    assert_eq!(again.status(), StatusCode::NoContent);
    let verdict = server.validate(created.access_token.token.secret()).await;
    assert_eq!(verdict, serde_json::json!({"valid": false, "reason": "deleted"}));
}

// ---- custom ids and user details (2025-03-02-preview) ---------------------------------------

#[tokio::test]
async fn custom_id_returns_the_same_user_and_user_detail_reads_it() {
    let (_server, client) = serve_https(PREVIEW).await;
    let with_custom_id = |id: &str| CommunicationIdentityClientCreateUserOptions {
        custom_id: Some(id.to_owned()),
        ..Default::default()
    };
    let alice = client.create_user(Some(with_custom_id("alice@contoso.com"))).await.unwrap();
    assert_eq!(alice.status(), StatusCode::Created);
    let alice = alice.into_model().unwrap();
    let again = client.create_user(Some(with_custom_id("alice@contoso.com"))).await.unwrap();
    assert_eq!(again.status(), StatusCode::Created);
    assert_eq!(again.into_model().unwrap(), alice, "same customId, same user");
    let bob = client.create_user(Some(with_custom_id("bob@contoso.com"))).await.unwrap();
    assert_ne!(bob.into_model().unwrap(), alice);

    let detail = client.get_user_detail(&alice, None).await.unwrap();
    assert_eq!(detail.status(), StatusCode::Ok);
    let detail = detail.into_model().unwrap();
    assert_eq!(detail.user, alice);
    assert_eq!(detail.custom_id.as_deref(), Some("alice@contoso.com"));
    assert_eq!(detail.last_token_issued_at, None);

    // create_user_and_token with the same custom id also finds alice, and issues a token.
    let options = CommunicationIdentityClientCreateUserAndTokenOptions {
        custom_id: Some("alice@contoso.com".to_owned()),
        ..Default::default()
    };
    let before = SystemClock.now() - Duration::seconds(2);
    let with_token =
        new_user_with_token(&client, CommunicationTokenScope::Chat, Some(options)).await;
    assert_eq!(with_token.user, alice);
    let detail = user_detail(&client, &alice).await;
    let issued_at = detail.last_token_issued_at.expect("a token was issued");
    assert!(issued_at >= before && issued_at <= SystemClock.now(), "{issued_at}");

    // A plain user has no custom id.
    let plain = new_user(&client).await;
    assert_eq!(user_detail(&client, &plain).await.custom_id, None);
}

#[tokio::test]
async fn user_detail_and_custom_id_need_the_preview_version() {
    let (_server, client) = serve_https(DEFAULT_API_VERSION).await;
    let user = new_user(&client).await;
    let error = client.get_user_detail(&user, None).await.unwrap_err();
    assert!(error.to_string().contains(PREVIEW), "{error}");
    let options = CommunicationIdentityClientCreateUserOptions {
        custom_id: Some("carol".to_owned()),
        ..Default::default()
    };
    let error = client.create_user(Some(options)).await.unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::Other), "{error:?}");
}

// ---- api-versions ---------------------------------------------------------------------------

#[tokio::test]
async fn every_supported_api_version_creates_users_and_tokens() {
    let server = TestServer::start().await;
    for &version in SUPPORTED_API_VERSIONS {
        let client = https_client_with(&server, version);
        assert_eq!(client.api_version(), version);
        let result = client
            .create_user_and_token(
                &[CommunicationTokenScope::Chat, CommunicationTokenScope::VoIP],
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{version}: {e}"))
            .into_model()
            .unwrap();
        let verdict = server.validate(result.access_token.token.secret()).await;
        assert_eq!(verdict["valid"], true, "{version}: {verdict}");
        assert_eq!(verdict["identity"]["id"], result.user.id.as_str());
        client.get_token(&result.user, &[CommunicationTokenScope::Chat], None).await.unwrap();
        client.revoke_tokens(&result.user, None).await.unwrap();
        client.delete_user(&result.user, None).await.unwrap();

        let custom_expiry = minutes(60);
        let user = new_user(&client).await;
        let outcome =
            client.get_token(&user, &[CommunicationTokenScope::Chat], custom_expiry).await;
        if ["2021-03-07", "2022-06-01"].contains(&version) {
            let error = outcome.unwrap_err();
            assert!(error.to_string().contains("2022-10-01 or later"), "{version}: {error}");
        } else {
            let token = outcome.unwrap_or_else(|e| panic!("{version}: {e}")).into_model().unwrap();
            assert_expires_in(token.expires_on, Duration::minutes(60));
        }
    }
}

// ---- authentication -------------------------------------------------------------------------

#[tokio::test]
async fn an_untrusted_certificate_fails_at_once_and_says_so() {
    let server = TestServer::start().await;
    // The default transport trusts the platform's roots only, not the development CA.
    let client =
        CommunicationIdentityClient::from_connection_string(&server.connection_string(), None)
            .unwrap();
    let error = client.create_user(None).await.unwrap_err();
    // `Other`, not `Connection` or `Io`: the retry policy gives up at once.
    assert_eq!(*error.kind(), ErrorKind::Other, "{error:?}");
    // The retry policy wraps it; the reason is in the chain of sources.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    assert!(
        message.contains("is not trusted: invalid peer certificate: UnknownIssuer"),
        "{message}"
    );
}

#[tokio::test]
async fn wrong_key_is_401_denied() {
    let server = TestServer::start().await;
    let wrong =
        CommunicationKeyCredential::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
    let client = CommunicationIdentityClient::with_key_credential(
        &server.endpoint(),
        wrong.clone(),
        Some(https_options(&server, acs_identity::clients::DEFAULT_API_VERSION)),
    )
    .unwrap();
    let error = client.create_user(None).await.unwrap_err();
    assert_http_error(&error, StatusCode::Unauthorized, "Denied");
    let error = client.validate_token("x.y.z", None).await.unwrap_err();
    assert_http_error(&error, StatusCode::Unauthorized, "Denied");

    // Rotating the shared credential to the right key fixes the same client.
    wrong.update(primary_key(&server)).unwrap();
    client.create_user(None).await.unwrap();
}

// ---- concurrency and secrets ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_cloned_client_serves_20_tasks() {
    let (server, client) = serve_https(DEFAULT_API_VERSION).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let created = client
                    .create_user_and_token(&[CommunicationTokenScope::Chat], None)
                    .await?
                    .into_model()?;
                let token =
                    client.get_token(&created.user, &[CommunicationTokenScope::VoIP], minutes(60));
                let token = token.await?.into_model()?;
                client.revoke_tokens(&created.user, None).await?;
                Ok::<_, Error>((created.user, token))
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        let (user, token) = task.await.unwrap().unwrap();
        let verdict = server.validate(token.token.secret()).await;
        assert_eq!(verdict["reason"], "revoked", "{verdict}");
        ids.insert(user.id);
    }
    assert_eq!(ids.len(), 20, "20 distinct users");
}

#[tokio::test]
async fn debug_output_shows_no_key_or_token() {
    let server = TestServer::start().await;
    let key = primary_key(&server);
    let client = https_client(&server);
    let credential = CommunicationKeyCredential::new(key.clone()).unwrap();
    let created = new_user_with_token(&client, CommunicationTokenScope::Chat, None).await;
    let token = client
        .get_token(&created.user, &[CommunicationTokenScope::Chat], None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    let options = https_options(&server, PREVIEW);
    let teams = GetTokenForTeamsUserOptions::new(token.token.secret().to_owned(), "app", "user");
    let debug = [
        format!("{client:?}"),
        format!("{client:#?}"),
        format!("{credential:?}"),
        format!("{created:?}"),
        format!("{token:?}"),
        format!("{options:?}"),
        format!("{teams:?}"),
    ];
    let secrets =
        [key.as_str(), &key[..12], token.token.secret(), created.access_token.token.secret()];
    for text in &debug {
        for secret in secrets {
            assert!(!text.contains(secret), "{text} shows a secret");
        }
        assert!(!text.contains("eyJ"), "{text} shows a token");
    }
    assert!(debug[0].contains(&server.endpoint()), "the endpoint is fine to show: {}", debug[0]);
}

// ---- Teams user exchange and the validation extension ---------------------------------------

#[tokio::test]
async fn teams_user_exchange_surfaces_the_services_rejection() {
    let (server, client) = serve_https(DEFAULT_API_VERSION).await;
    // The service trusts no Entra issuer here, so any Teams user token is refused.
    let parameters = GetTokenForTeamsUserOptions::new("eyJ.entra.token", "app-id", "object-id");
    let error = client.get_token_for_teams_user(&parameters, None).await.unwrap_err();
    assert_http_error(&error, StatusCode::Unauthorized, "InvalidAccessToken");
    assert_eq!(error.to_string(), "Provided access token is not valid.");
    assert!(!format!("{error:?}").contains("eyJ.entra.token"));

    // 2021-03-07 has no exchange: refused before sending.
    let old = https_client_with(&server, "2021-03-07");
    let error = old.get_token_for_teams_user(&parameters, None).await.unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::Other), "{error:?}");
    assert!(error.to_string().contains("2022-06-01 or later"), "{error}");
}

#[tokio::test]
async fn validate_token_reports_valid_revoked_deleted_and_malformed() {
    let server = TestServer::start().await;
    for client in [https_client(&server), http_client(&server)] {
        let created = client
            .create_user_and_token(
                &[CommunicationTokenScope::Chat, CommunicationTokenScope::VoIPJoin],
                None,
            )
            .await
            .unwrap()
            .into_model()
            .unwrap();
        let token = created.access_token.token.secret();
        let verdict = client.validate_token(token, None).await.unwrap();
        assert_eq!(verdict.status(), StatusCode::Ok);
        let verdict = verdict.into_model().unwrap();
        assert!(verdict.valid);
        assert_eq!(verdict.user.as_ref(), Some(&created.user));
        assert_eq!(
            verdict.scopes,
            [CommunicationTokenScope::Chat, CommunicationTokenScope::VoIPJoin]
        );
        assert_eq!(
            verdict.expires_on.map(OffsetDateTime::unix_timestamp),
            Some(created.access_token.expires_on.unix_timestamp())
        );
        assert_eq!(verdict.reason, None);

        client.revoke_tokens(&created.user, None).await.unwrap();
        let verdict = client.validate_token(token, None).await.unwrap().into_model().unwrap();
        assert!(!verdict.valid);
        assert_eq!(verdict.reason.as_deref(), Some("revoked"));
        assert_eq!(verdict.user, None);

        client.delete_user(&created.user, None).await.unwrap();
        let verdict = client.validate_token(token, None).await.unwrap().into_model().unwrap();
        assert_eq!(verdict.reason.as_deref(), Some("deleted"));

        let verdict = client.validate_token("not-a-jwt", None).await.unwrap().into_model().unwrap();
        assert_eq!((verdict.valid, verdict.reason.as_deref()), (false, Some("malformed")));
    }
}

// ---- throttling ------------------------------------------------------------------------------

#[tokio::test]
async fn the_client_waits_out_429_and_retries_by_itself() {
    use acs_identity_testkit::ThrottleClass;
    use azure_core::http::RetryOptions;
    // Two tokens per second: five tokens need three windows, so at least one second.
    let server = TestServer::start_throttled(ThrottleClass::IssueAccessToken, 2, 1).await;
    let client = https_client(&server);
    let user = new_user(&client).await;
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let token = client.get_token(&user, &[CommunicationTokenScope::Chat], None).await.unwrap();
        assert_eq!(token.status(), StatusCode::Ok);
    }
    let waited = started.elapsed();
    assert!(waited >= std::time::Duration::from_secs(1), "five tokens in {waited:?}");

    // Without retries the 429 reaches the caller, with ACS's code.
    let mut options = https_options(&server, acs_identity::clients::DEFAULT_API_VERSION);
    options.client_options.retry = RetryOptions::none();
    let impatient = CommunicationIdentityClient::from_connection_string(
        &server.connection_string(),
        Some(options),
    )
    .unwrap();
    // Ten quick calls span at most one window boundary, so at most four can pass.
    let mut refused = None;
    for _ in 0..10 {
        if let Err(e) = impatient.get_token(&user, &[CommunicationTokenScope::Chat], None).await {
            refused = Some(e);
            break;
        }
    }
    let error = refused.expect("two tokens per second: some of ten quick calls are refused");
    assert_http_error(&error, StatusCode::TooManyRequests, "TooManyRequests");
}

/// Creates a user with a token, issues a 2 h token, revokes, deletes, and checks each step.
async fn run_lifecycle(server: &TestServer, client: &CommunicationIdentityClient) {
    let created = new_user_with_token(client, CommunicationTokenScope::Chat, None).await;
    let token = client
        .get_token(&created.user, &[CommunicationTokenScope::VoIP], minutes(120))
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(jwt_payload(token.token.secret())["acsScope"], "voip");
    assert_expires_in(token.expires_on, Duration::minutes(120));
    client.revoke_tokens(&created.user, None).await.unwrap();
    assert_eq!(server.validate(token.token.secret()).await["reason"], "revoked");
    client.delete_user(&created.user, None).await.unwrap();
    let error =
        client.get_token(&created.user, &[CommunicationTokenScope::Chat], None).await.unwrap_err();
    assert_http_error(&error, StatusCode::NotFound, "IdentityNotFound");
}

#[tokio::test]
async fn http_endpoint_runs_the_whole_lifecycle() {
    let server = TestServer::start().await;
    let client = http_client(&server);
    assert_eq!(client.endpoint().scheme(), "http");
    run_lifecycle(&server, &client).await;
}
