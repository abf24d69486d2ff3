//! Client tests against an in-process fake transport.
//!
//! Signatures are recomputed here from the access key with `hmac`, `sha2` and `base64` directly,
//! independently of `acs_common`.

use super::*;
use crate::models::CommunicationUserDetail;
use acs_common::clock::{Clock as _, SystemClock};
use acs_identity_testkit::issuer::IssuerCredential;
use acs_identity_testkit::{uuid_like, TestIssuer};
use async_trait::async_trait;
use azure_core::{
    error::ErrorResponse,
    http::{
        headers::{HeaderName, Headers},
        AsyncRawResponse, Body, FixedRetryOptions, HttpClient, RetryOptions, StatusCode, Transport,
    },
};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::sync::Mutex;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const OTHER_KEY: &str = "pw==";
const ENDPOINT: &str = "https://contoso.communication.azure.com/";
const USER_ID: &str =
    "8:acs:00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001";
const ENCODED_USER_ID: &str =
    "8%3Aacs%3A00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001";
const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjMyNTAzNjgwMDAwfQ.c2ln";
const EXPIRES_ON: &str = "2022-09-07T14:34:56.2714874+00:00";

type Responder = dyn Fn(usize, &Request) -> azure_core::Result<AsyncRawResponse> + Send + Sync;

/// An `HttpClient` that records every request and answers with `responder(attempt, request)`.
struct FakeHttpClient {
    requests: Mutex<Vec<Request>>,
    responder: Box<Responder>,
}

impl fmt::Debug for FakeHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeHttpClient").finish_non_exhaustive()
    }
}

impl FakeHttpClient {
    fn new(
        responder: impl Fn(usize, &Request) -> azure_core::Result<AsyncRawResponse>
            + Send
            + Sync
            + 'static,
    ) -> Arc<Self> {
        Arc::new(Self { requests: Mutex::new(Vec::new()), responder: Box::new(responder) })
    }

    fn replying(status: u16, body: &'static str) -> Arc<Self> {
        Self::new(move |_, _| Ok(response(status, body)))
    }

    /// Answers the first request with `first` and every later one with `then`.
    fn replying_first(first: (u16, &'static str), then: (u16, &'static str)) -> Arc<Self> {
        Self::new(move |attempt, _| {
            let (status, body) = if attempt == 0 { first } else { then };
            Ok(response(status, body))
        })
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn only_request(&self) -> Request {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected exactly one request");
        requests.into_iter().next().unwrap()
    }
}

#[async_trait]
impl HttpClient for FakeHttpClient {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let attempt = {
            let mut requests = self.requests.lock().unwrap();
            requests.push(request.clone());
            requests.len() - 1
        };
        (self.responder)(attempt, request)
    }
}

fn response(status: u16, body: &'static str) -> AsyncRawResponse {
    let mut headers = Headers::new();
    if !body.is_empty() {
        headers.insert(CONTENT_TYPE, "application/json; charset=utf-8");
    }
    AsyncRawResponse::from_bytes(StatusCode::from(status), headers, body.as_bytes().to_vec())
}

fn options_with(fake: &Arc<FakeHttpClient>) -> CommunicationIdentityClientOptions {
    let mut options = CommunicationIdentityClientOptions::default();
    options.client_options.transport = Some(Transport::new(fake.clone()));
    options
}

fn client(fake: &Arc<FakeHttpClient>) -> CommunicationIdentityClient {
    client_with(fake, options_with(fake))
}

fn client_with(
    _fake: &Arc<FakeHttpClient>,
    options: CommunicationIdentityClientOptions,
) -> CommunicationIdentityClient {
    CommunicationIdentityClient::from_connection_string(
        &format!("endpoint={ENDPOINT};accesskey={KEY}"),
        Some(options),
    )
    .unwrap()
}

fn preview_client(fake: &Arc<FakeHttpClient>) -> CommunicationIdentityClient {
    let mut options = options_with(fake);
    options.api_version = "2025-03-02-preview".to_owned();
    client_with(fake, options)
}

fn user() -> CommunicationUserIdentifier {
    CommunicationUserIdentifier::new(USER_ID)
}

fn header<'a>(request: &'a Request, name: &'static str) -> Option<&'a str> {
    request.headers().get_optional_str(&HeaderName::from_static(name))
}

fn body(request: &Request) -> Vec<u8> {
    match request.body() {
        Body::Bytes(bytes) => bytes.to_vec(),
        Body::SeekableStream(_) => panic!("unexpected streamed body"),
    }
}

fn body_str(request: &Request) -> String {
    String::from_utf8(body(request)).unwrap()
}

/// Recomputes the HMAC signature from scratch and compares all three auth headers.
#[track_caller]
fn assert_signed_with(request: &Request, key: &str) {
    let content = body(request);
    let hash = STANDARD.encode(Sha256::digest(&content));
    assert_eq!(header(request, "x-ms-content-sha256"), Some(hash.as_str()));

    let date = header(request, "x-ms-date").expect("x-ms-date is set");
    let signed_at = azure_core::time::parse_rfc7231(date).expect("x-ms-date is RFC 1123");
    let skew = (SystemClock.now() - signed_at).abs();
    assert!(skew < Duration::minutes(5), "x-ms-date {date} is not current");
    assert!(date.ends_with(" GMT"));

    let url = request.url();
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap()),
        None => url.host_str().unwrap().to_owned(),
    };
    let path_and_query = format!("{}?{}", url.path(), url.query().unwrap_or_default());
    let to_sign = format!(
        "{}\n{path_and_query}\n{date};{host};{hash}",
        request.method().as_str().to_uppercase()
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&STANDARD.decode(key).unwrap()).unwrap();
    mac.update(to_sign.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(
        header(request, "authorization"),
        Some(
            format!(
                "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
            )
            .as_str()
        ),
    );
}

#[track_caller]
fn assert_signed(request: &Request) {
    assert_signed_with(request, KEY);
}

#[track_caller]
fn assert_target(request: &Request, method: Method, path: &str, api_version: &str) {
    assert_eq!(request.method(), method);
    assert_eq!(request.url().scheme(), "https");
    assert_eq!(request.url().host_str(), Some("contoso.communication.azure.com"));
    assert_eq!(request.url().path(), path);
    assert_eq!(request.url().query(), Some(format!("api-version={api_version}").as_str()));
    assert_eq!(header(request, "accept"), Some("application/json"));
}

/// The one request `fake` got, after checking it is `method` to `path` with the default
/// api-version, has no body and is signed.
#[track_caller]
fn only_signed_request_without_body(fake: &FakeHttpClient, method: Method, path: &str) -> Request {
    let request = fake.only_request();
    assert_target(&request, method, path, DEFAULT_API_VERSION);
    assert!(body(&request).is_empty());
    assert_signed(&request);
    request
}

#[track_caller]
fn assert_http_error(error: &Error, expected_status: u16, expected_code: Option<&str>) {
    match error.kind() {
        ErrorKind::HttpResponse { status, error_code, .. } => {
            assert_eq!(*status, StatusCode::from(expected_status));
            assert_eq!(error_code.as_deref(), expected_code);
        }
        other => panic!("expected an HTTP response error, got {other:?}"),
    }
}

// ---- create_user ---------------------------------------------------------------------------

#[tokio::test]
async fn create_user_posts_empty_object_and_returns_identifier() {
    let fake = FakeHttpClient::replying(201, r#"{"identity":{"id":"8:acs:r_u"}}"#);
    let response = client(&fake).create_user(None).await.unwrap();
    assert_eq!(response.status(), StatusCode::Created);
    assert_eq!(response.into_model().unwrap(), CommunicationUserIdentifier::new("8:acs:r_u"));

    let request = fake.only_request();
    assert_target(&request, Method::Post, "/identities", DEFAULT_API_VERSION);
    assert_eq!(body_str(&request), "{}");
    assert_eq!(header(&request, "content-type"), Some("application/json"));
    assert_signed(&request);
}

#[tokio::test]
async fn pipeline_adds_client_request_id_and_user_agent() {
    let fake = FakeHttpClient::replying(201, r#"{"identity":{"id":"8:acs:r_u"}}"#);
    client(&fake).create_user(None).await.unwrap();
    let request = fake.only_request();
    let request_id = header(&request, "x-ms-client-request-id").expect("request id");
    assert_eq!(request_id.len(), 36, "a GUID: {request_id}");
    let user_agent = header(&request, "user-agent").expect("user agent");
    assert!(
        user_agent.starts_with(&format!("azsdk-rust-acs_identity/{} ", env!("CARGO_PKG_VERSION"))),
        "{user_agent}"
    );
}

#[tokio::test]
async fn create_user_with_custom_id_needs_the_preview_api_version() {
    let fake =
        FakeHttpClient::replying(201, r#"{"identity":{"id":"8:acs:r_u","customId":"alice"}}"#);
    let options = CommunicationIdentityClientCreateUserOptions {
        custom_id: Some("alice".to_owned()),
        ..Default::default()
    };
    let error = client(&fake).create_user(Some(options.clone())).await.unwrap_err();
    assert!(error.to_string().contains("2025-03-02-preview"), "{error}");
    assert!(fake.requests().is_empty(), "nothing is sent");

    let user =
        preview_client(&fake).create_user(Some(options)).await.unwrap().into_model().unwrap();
    assert_eq!(user.id, "8:acs:r_u");
    let request = fake.only_request();
    assert_target(&request, Method::Post, "/identities", "2025-03-02-preview");
    assert_eq!(body_str(&request), r#"{"customId":"alice"}"#);
    assert_signed(&request);
}

#[tokio::test]
async fn older_api_versions_are_sent_as_configured() {
    let fake = FakeHttpClient::replying(201, r#"{"identity":{"id":"8:acs:r_u"}}"#);
    let mut options = options_with(&fake);
    options.api_version = "2021-03-07".to_owned();
    client_with(&fake, options).create_user(None).await.unwrap();
    assert_target(&fake.only_request(), Method::Post, "/identities", "2021-03-07");
}

// ---- create_user_and_token -----------------------------------------------------------------

#[tokio::test]
async fn create_user_and_token_is_one_request_with_scopes_and_expiry() {
    let fake = FakeHttpClient::replying(
        201,
        r#"{"identity":{"id":"8:acs:r_u"},"accessToken":{"token":"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjMyNTAzNjgwMDAwfQ.c2ln","expiresOn":"2022-09-07T14:34:56.2714874+00:00"}}"#,
    );
    let options = CommunicationIdentityClientCreateUserAndTokenOptions {
        expires_in: Some(Duration::minutes(60)),
        ..Default::default()
    };
    let scopes = [CommunicationTokenScope::Chat, CommunicationTokenScope::VoIP];
    let result = client(&fake).create_user_and_token(&scopes, Some(options)).await.unwrap();
    let result = result.into_model().unwrap();
    assert_eq!(result.user.id, "8:acs:r_u");
    assert_eq!(result.access_token.token.secret(), JWT);
    assert_eq!(
        result.access_token.expires_on,
        azure_core::time::parse_rfc3339(EXPIRES_ON).unwrap()
    );

    let request = fake.only_request();
    assert_target(&request, Method::Post, "/identities", DEFAULT_API_VERSION);
    assert_eq!(
        body_str(&request),
        r#"{"createTokenWithScopes":["chat","voip"],"expiresInMinutes":60}"#
    );
    // The hash recorded from the official SDKs for this exact body.
    assert_eq!(
        header(&request, "x-ms-content-sha256"),
        Some("jENEeifYNCidF9FcfXJ54WzhK3ED/2UrQyA4+oWOZKc=")
    );
    assert_signed(&request);
}

#[tokio::test]
async fn create_user_and_token_with_custom_id_on_preview() {
    let fake = FakeHttpClient::replying(
        201,
        r#"{"identity":{"id":"8:acs:r_u","customId":"bob"},"accessToken":{"token":"t","expiresOn":"2025-02-10T21:39:39.3244584+00:00"}}"#,
    );
    let options = CommunicationIdentityClientCreateUserAndTokenOptions {
        custom_id: Some("bob".to_owned()),
        ..Default::default()
    };
    preview_client(&fake)
        .create_user_and_token(&[CommunicationTokenScope::ChatJoinLimited], Some(options))
        .await
        .unwrap();
    assert_eq!(
        body_str(&fake.only_request()),
        r#"{"createTokenWithScopes":["chat.join.limited"],"customId":"bob"}"#
    );
}

#[tokio::test]
async fn create_user_and_token_needs_scopes() {
    let fake = FakeHttpClient::replying(201, "{}");
    let error = client(&fake).create_user_and_token(&[], None).await.unwrap_err();
    assert!(error.to_string().contains("scopes must not be empty"));
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn create_user_and_token_without_token_in_response_is_a_conversion_error() {
    let fake = FakeHttpClient::replying(201, r#"{"identity":{"id":"8:acs:r_u"}}"#);
    let response =
        client(&fake).create_user_and_token(&[CommunicationTokenScope::Chat], None).await.unwrap();
    let error = response.into_model().unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::DataConversion), "{error:?}");
}

// ---- get_token -----------------------------------------------------------------------------

#[tokio::test]
async fn get_token_encodes_id_in_path_and_sends_scopes_and_expiry() {
    let fake = FakeHttpClient::replying(
        200,
        r#"{"token":"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjMyNTAzNjgwMDAwfQ.c2ln","expiresOn":"2026-07-22T10:00:00.1234567-07:00"}"#,
    );
    let options = CommunicationIdentityClientGetTokenOptions {
        expires_in: Some(Duration::hours(24)),
        ..Default::default()
    };
    let scopes = [CommunicationTokenScope::ChatJoin, CommunicationTokenScope::VoIPJoin];
    let token = client(&fake).get_token(&user(), &scopes, Some(options)).await.unwrap();
    let token = token.into_model().unwrap();
    assert_eq!(token.token.secret(), JWT);
    assert_eq!(
        token.expires_on,
        azure_core::time::parse_rfc3339("2026-07-22T17:00:00.1234567Z").unwrap()
    );

    let request = fake.only_request();
    let path = format!("/identities/{ENCODED_USER_ID}/:issueAccessToken");
    assert_target(&request, Method::Post, &path, DEFAULT_API_VERSION);
    assert_eq!(
        body_str(&request),
        r#"{"scopes":["chat.join","voip.join"],"expiresInMinutes":1440}"#
    );
    assert_eq!(header(&request, "content-type"), Some("application/json"));
    assert_signed(&request);
}

#[tokio::test]
async fn get_token_without_expiry_omits_the_field() {
    let fake = FakeHttpClient::replying(200, r#"{"token":"t","expiresOn":"2022-09-07T14:34:56Z"}"#);
    client(&fake).get_token(&user(), &[CommunicationTokenScope::Chat], None).await.unwrap();
    assert_eq!(body_str(&fake.only_request()), r#"{"scopes":["chat"]}"#);
}

#[tokio::test]
async fn get_token_checks_expiry_bounds_before_sending() {
    let fake = FakeHttpClient::replying(200, r#"{"token":"t","expiresOn":"2022-09-07T14:34:56Z"}"#);
    let client = client(&fake);
    for bad in [
        Duration::minutes(59),
        Duration::minutes(1441),
        Duration::minutes(90) + Duration::seconds(30),
        Duration::ZERO,
        Duration::hours(-1),
        Duration::days(100_000),
    ] {
        let options = CommunicationIdentityClientGetTokenOptions {
            expires_in: Some(bad),
            ..Default::default()
        };
        let error = client
            .get_token(&user(), &[CommunicationTokenScope::Chat], Some(options))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("[1, 24] hours"), "{bad}: {error}");
    }
    assert!(fake.requests().is_empty());

    for good in [Duration::minutes(60), Duration::minutes(1440), Duration::hours(2)] {
        let options = CommunicationIdentityClientGetTokenOptions {
            expires_in: Some(good),
            ..Default::default()
        };
        client.get_token(&user(), &[CommunicationTokenScope::Chat], Some(options)).await.unwrap();
    }
    let sent: Vec<_> = fake.requests().iter().map(body_str).collect();
    assert_eq!(
        sent,
        [
            r#"{"scopes":["chat"],"expiresInMinutes":60}"#,
            r#"{"scopes":["chat"],"expiresInMinutes":1440}"#,
            r#"{"scopes":["chat"],"expiresInMinutes":120}"#,
        ]
    );
}

#[tokio::test]
async fn custom_expiry_needs_api_version_2022_10_01() {
    let fake = FakeHttpClient::replying(200, r#"{"token":"t","expiresOn":"2022-09-07T14:34:56Z"}"#);
    let mut options = options_with(&fake);
    options.api_version = "2022-06-01".to_owned();
    let client = client_with(&fake, options);
    let get = CommunicationIdentityClientGetTokenOptions {
        expires_in: Some(Duration::hours(1)),
        ..Default::default()
    };
    let error =
        client.get_token(&user(), &[CommunicationTokenScope::Chat], Some(get)).await.unwrap_err();
    assert!(error.to_string().contains("2022-10-01"), "{error}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn empty_user_id_is_rejected_before_sending() {
    let fake = FakeHttpClient::replying(204, "");
    let client = client(&fake);
    let nobody = CommunicationUserIdentifier::new("");
    assert!(client.get_token(&nobody, &[CommunicationTokenScope::Chat], None).await.is_err());
    assert!(client.revoke_tokens(&nobody, None).await.is_err());
    assert!(client.delete_user(&nobody, None).await.is_err());
    assert!(fake.requests().is_empty());
}

// ---- revoke_tokens / delete_user ------------------------------------------------------------

#[tokio::test]
async fn revoke_tokens_posts_without_body() {
    let fake = FakeHttpClient::replying(204, "");
    let response = client(&fake).revoke_tokens(&user(), None).await.unwrap();
    assert_eq!(response.status(), StatusCode::NoContent);

    let path = format!("/identities/{ENCODED_USER_ID}/:revokeAccessTokens");
    let request = only_signed_request_without_body(&fake, Method::Post, &path);
    assert_eq!(header(&request, "content-type"), None);
    assert_eq!(
        header(&request, "x-ms-content-sha256"),
        Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
    );
}

#[tokio::test]
async fn delete_user_sends_delete_with_encoded_id() {
    let fake = FakeHttpClient::replying(204, "");
    let response = client(&fake).delete_user(&user(), None).await.unwrap();
    assert_eq!(response.status(), StatusCode::NoContent);

    let path = format!("/identities/{ENCODED_USER_ID}");
    only_signed_request_without_body(&fake, Method::Delete, &path);
}

#[tokio::test]
async fn unexpected_success_status_is_an_error() {
    // The service documents 204; anything else means the call did not do what was asked.
    let fake = FakeHttpClient::replying(200, "{}");
    let error = client(&fake).delete_user(&user(), None).await.unwrap_err();
    assert_eq!(error.http_status(), Some(StatusCode::Ok));
}

// ---- Teams users ----------------------------------------------------------------------------

#[tokio::test]
async fn get_token_for_teams_user_sends_token_app_and_user() {
    let fake = FakeHttpClient::replying(
        200,
        r#"{"token":"acs-token","expiresOn":"2022-09-07T14:34:56.2714874+00:00"}"#,
    );
    let parameters = GetTokenForTeamsUserOptions::new("entra-token", "app-id", "object-id");
    let token = client(&fake)
        .get_token_for_teams_user(&parameters, None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(token.token.secret(), "acs-token");

    let request = fake.only_request();
    assert_target(&request, Method::Post, "/teamsUser/:exchangeAccessToken", DEFAULT_API_VERSION);
    assert_eq!(
        body_str(&request),
        r#"{"token":"entra-token","appId":"app-id","userId":"object-id"}"#
    );
    assert_signed(&request);
}

#[tokio::test]
async fn teams_exchange_is_not_available_in_2021_03_07() {
    let fake = FakeHttpClient::replying(200, "{}");
    let mut options = options_with(&fake);
    options.api_version = "2021-03-07".to_owned();
    let parameters = GetTokenForTeamsUserOptions::new("entra-token", "app-id", "object-id");
    let error =
        client_with(&fake, options).get_token_for_teams_user(&parameters, None).await.unwrap_err();
    assert!(error.to_string().contains("2022-06-01"), "{error}");
    assert!(!error.to_string().contains("entra-token"));
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn invalid_entra_token_maps_to_invalid_access_token() {
    let fake = FakeHttpClient::replying(
        401,
        r#"{"error":{"code":"InvalidAccessToken","message":"Provided access token is not valid."}}"#,
    );
    let parameters = GetTokenForTeamsUserOptions::new("", "app-id", "object-id");
    let error = client(&fake).get_token_for_teams_user(&parameters, None).await.unwrap_err();
    assert_http_error(&error, 401, Some("InvalidAccessToken"));
    assert_eq!(error.to_string(), "Provided access token is not valid.");
}

#[tokio::test]
async fn empty_error_body_keeps_the_status() {
    let fake = FakeHttpClient::replying(401, "");
    let parameters = GetTokenForTeamsUserOptions::new("expired", "app-id", "object-id");
    let error = client(&fake).get_token_for_teams_user(&parameters, None).await.unwrap_err();
    assert_http_error(&error, 401, None);
    assert_eq!(error.http_status(), Some(StatusCode::Unauthorized));
}

// ---- get_user_detail -----------------------------------------------------------------------

#[tokio::test]
async fn get_user_detail_on_preview() {
    let fake = FakeHttpClient::replying(
        200,
        r#"{"id":"8:acs:r_u","customId":"sally@contoso.com","lastTokenIssuedAt":"2025-02-10T21:39:39.3244584+00:00"}"#,
    );
    let detail: CommunicationUserDetail =
        preview_client(&fake).get_user_detail(&user(), None).await.unwrap().into_model().unwrap();
    assert_eq!(detail.user.id, "8:acs:r_u");
    assert_eq!(detail.custom_id.as_deref(), Some("sally@contoso.com"));
    assert_eq!(
        detail.last_token_issued_at,
        Some(azure_core::time::parse_rfc3339("2025-02-10T21:39:39.3244584+00:00").unwrap())
    );

    let request = fake.only_request();
    let path = format!("/identities/{ENCODED_USER_ID}");
    assert_target(&request, Method::Get, &path, "2025-03-02-preview");
    assert!(body(&request).is_empty());
    assert_signed(&request);
}

#[tokio::test]
async fn get_user_detail_needs_the_preview_api_version() {
    let fake = FakeHttpClient::replying(200, r#"{"id":"8:acs:r_u"}"#);
    let error = client(&fake).get_user_detail(&user(), None).await.unwrap_err();
    assert!(error.to_string().contains("get_user_detail needs api-version 2025-03-02-preview"));
    assert!(fake.requests().is_empty());
}

// ---- errors and retries --------------------------------------------------------------------

#[tokio::test]
async fn validation_error_exposes_status_code_message_and_target() {
    let fake = FakeHttpClient::replying(
        400,
        r#"{"error":{"code":"ValidationError","message":"ExpiresInMinutes value 1441 is invalid. Value must be within the [60, 1440] interval.","target":"ExpiresInMinutes"}}"#,
    );
    let error =
        client(&fake).get_token(&user(), &[CommunicationTokenScope::Chat], None).await.unwrap_err();
    assert_http_error(&error, 400, Some("ValidationError"));
    assert_eq!(
        error.to_string(),
        "ExpiresInMinutes value 1441 is invalid. Value must be within the [60, 1440] interval."
    );
    assert_eq!(fake.requests().len(), 1, "400 is not retried");

    let details = ErrorResponse::try_from(error).unwrap().error.unwrap();
    assert_eq!(details.code.as_deref(), Some("ValidationError"));
    assert_eq!(details.target.as_deref(), Some("ExpiresInMinutes"));
}

#[tokio::test]
async fn foreign_identity_is_identity_not_owned() {
    let fake = FakeHttpClient::replying(
        401,
        r#"{"error":{"code":"IdentityNotOwned","message":"Provided identity doesn't belong to the resource."}}"#,
    );
    let client = client(&fake);
    for error in [
        client.delete_user(&user(), None).await.unwrap_err(),
        client.revoke_tokens(&user(), None).await.unwrap_err(),
        client.get_token(&user(), &[CommunicationTokenScope::VoIP], None).await.unwrap_err(),
    ] {
        assert_http_error(&error, 401, Some("IdentityNotOwned"));
        assert_eq!(error.to_string(), "Provided identity doesn't belong to the resource.");
    }
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn throttled_request_is_retried_and_signed_again() {
    // The key is rotated while the first attempt is in flight: the retry must carry a new
    // signature made with the new key, which proves the policy runs on every try.
    let credential = CommunicationKeyCredential::new(KEY).unwrap();
    let rotating = credential.clone();
    let fake = FakeHttpClient::new(move |attempt, _| {
        if attempt == 0 {
            rotating.update(OTHER_KEY).unwrap();
            let mut headers = Headers::new();
            headers.insert(HeaderName::from_static("retry-after"), "0");
            Ok(AsyncRawResponse::from_bytes(
                StatusCode::TooManyRequests,
                headers,
                br#"{"error":{"code":"TooManyRequests","message":"Slow down."}}"#.to_vec(),
            ))
        } else {
            Ok(response(201, r#"{"identity":{"id":"8:acs:r_u"}}"#))
        }
    });
    let client = CommunicationIdentityClient::with_key_credential(
        ENDPOINT,
        credential,
        Some(options_with(&fake)),
    )
    .unwrap();
    let user = client.create_user(None).await.unwrap().into_model().unwrap();
    assert_eq!(user.id, "8:acs:r_u");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_signed_with(&requests[0], KEY);
    assert_signed_with(&requests[1], OTHER_KEY);
    assert_eq!(
        header(&requests[0], "x-ms-client-request-id"),
        header(&requests[1], "x-ms-client-request-id"),
        "a retry keeps the client request id"
    );
}

#[tokio::test]
async fn persistent_throttling_surfaces_429_after_retries() {
    let fake = FakeHttpClient::replying(
        429,
        r#"{"error":{"code":"TooManyRequests","message":"Rate limit exceeded."}}"#,
    );
    let mut options = options_with(&fake);
    options.client_options.retry = RetryOptions::fixed(FixedRetryOptions {
        delay: Duration::milliseconds(1),
        max_retries: 2,
        ..Default::default()
    });
    let error = client_with(&fake, options).create_user(None).await.unwrap_err();
    assert_http_error(&error, 429, Some("TooManyRequests"));
    assert_eq!(fake.requests().len(), 3, "one try plus two retries");
}

#[tokio::test]
async fn transport_errors_are_retried() {
    let fake = FakeHttpClient::new(|attempt, _| {
        if attempt == 0 {
            Err(Error::with_message(ErrorKind::Io, "connection reset"))
        } else {
            Ok(response(204, ""))
        }
    });
    let mut options = options_with(&fake);
    options.client_options.retry = RetryOptions::fixed(FixedRetryOptions {
        delay: Duration::milliseconds(1),
        max_retries: 1,
        ..Default::default()
    });
    client_with(&fake, options).delete_user(&user(), None).await.unwrap();
    assert_eq!(fake.requests().len(), 2);
}

// ---- constructors, endpoints and authentication --------------------------------------------

#[tokio::test]
async fn endpoint_with_port_and_base_path() {
    let fake = FakeHttpClient::replying(204, "");
    let client = CommunicationIdentityClient::with_key_credential(
        "http://127.0.0.1:8080/acs/",
        CommunicationKeyCredential::new(KEY).unwrap(),
        Some(options_with(&fake)),
    )
    .unwrap();
    assert_eq!(client.endpoint().as_str(), "http://127.0.0.1:8080/acs/");
    client.delete_user(&user(), None).await.unwrap();

    let request = fake.only_request();
    assert_eq!(
        request.url().as_str(),
        format!("http://127.0.0.1:8080/acs/identities/{ENCODED_USER_ID}?api-version={DEFAULT_API_VERSION}")
    );
    // Signed with host "127.0.0.1:8080", matching the Host header an HTTP client sends.
    assert_signed(&request);
}

#[test]
fn invalid_endpoints_are_rejected() {
    let key = CommunicationKeyCredential::new(KEY).unwrap();
    for endpoint in ["", "contoso.communication.azure.com", "ftp://contoso", "https://h/?x=1"] {
        let result = CommunicationIdentityClient::with_key_credential(endpoint, key.clone(), None);
        assert!(result.is_err(), "{endpoint}");
    }
    let options =
        CommunicationIdentityClientOptions { api_version: String::new(), ..Default::default() };
    assert!(CommunicationIdentityClient::with_key_credential(ENDPOINT, key, Some(options)).is_err());
}

#[test]
fn connection_string_errors_never_contain_the_key() {
    for bad in [
        format!("endpoint=ftp://x;accesskey={KEY}"),
        format!("accesskey={KEY}"),
        format!("endpoint={ENDPOINT};accesskey={KEY};extra={KEY}"),
        "endpoint=https://x;accesskey=%%%".to_owned(),
    ] {
        let error = CommunicationIdentityClient::from_connection_string(&bad, None).unwrap_err();
        assert!(!error.to_string().contains(KEY), "{error}");
        assert!(!format!("{error:?}").contains(KEY), "{error:?}");
    }
}

#[test]
fn default_options_use_the_latest_stable_api_version() {
    assert_eq!(CommunicationIdentityClientOptions::default().api_version, "2026-09-23");
    assert_eq!(SUPPORTED_API_VERSIONS.last(), Some(&DEFAULT_API_VERSION));
    let client = CommunicationIdentityClient::from_connection_string(
        &format!("endpoint={ENDPOINT};accesskey={KEY}"),
        None,
    )
    .unwrap();
    assert_eq!(client.api_version(), DEFAULT_API_VERSION);
    assert_eq!(client.endpoint().as_str(), ENDPOINT);
}

/// An Entra credential of a user of a fresh local issuer.
async fn entra_credential() -> Arc<IssuerCredential> {
    let issuer = Arc::new(TestIssuer::start().await);
    IssuerCredential::new(&issuer, &uuid_like(), &uuid_like())
}

#[tokio::test]
async fn entra_credential_sends_bearer_token_for_communication_scope() {
    let fake = FakeHttpClient::replying(201, r#"{"identity":{"id":"8:acs:r_u"}}"#);
    let credential = entra_credential().await;
    let client =
        CommunicationIdentityClient::new(ENDPOINT, credential.clone(), Some(options_with(&fake)))
            .unwrap();
    client.create_user(None).await.unwrap();

    let request = fake.only_request();
    let bearer = format!("Bearer {}", credential.last_token().expect("a token was asked for"));
    assert_eq!(header(&request, "authorization"), Some(bearer.as_str()));
    assert_eq!(header(&request, "x-ms-content-sha256"), None, "no HMAC headers with Entra");
    assert_eq!(credential.scopes(), ["https://communication.azure.com//.default"]);
}

#[tokio::test]
async fn entra_credential_refuses_plain_http() {
    let fake = FakeHttpClient::replying(201, r#"{"identity":{"id":"8:acs:r_u"}}"#);
    let client = CommunicationIdentityClient::new(
        "http://localhost:8080",
        entra_credential().await,
        Some(options_with(&fake)),
    )
    .unwrap();
    let error = client.create_user(None).await.unwrap_err();
    let mut messages = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        messages.push(inner.to_string());
        source = inner.source();
    }
    assert!(messages.iter().any(|m| m.contains("non-TLS")), "{messages:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn debug_output_never_contains_secrets() {
    let fake = FakeHttpClient::replying(
        201,
        r#"{"identity":{"id":"8:acs:r_u"},"accessToken":{"token":"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjMyNTAzNjgwMDAwfQ.c2ln","expiresOn":"2022-09-07T14:34:56Z"}}"#,
    );
    let client = client(&fake);
    let result = client
        .create_user_and_token(&[CommunicationTokenScope::Chat], None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(result.access_token.token.secret(), JWT);

    let credential = CommunicationKeyCredential::new(KEY).unwrap();
    let debug = [
        format!("{client:?}"),
        format!("{credential:?}"),
        format!("{result:?}"),
        format!("{:?}", result.access_token),
        format!("{:?}", options_with(&fake)),
        format!("{:?}", GetTokenForTeamsUserOptions::new(JWT, "app", "user")),
    ];
    for text in debug {
        assert!(!text.contains(KEY), "{text}");
        assert!(!text.contains("AAECAwQF"), "{text}");
        assert!(!text.contains(JWT), "{text}");
        assert!(!text.contains("eyJ"), "{text}");
    }
}

#[test]
fn client_is_clone_send_sync_and_its_futures_are_send() {
    fn assert_clone_send_sync<T: Clone + Send + Sync + 'static>() {}
    fn assert_send<T: Send>(_: &T) {}
    assert_clone_send_sync::<CommunicationIdentityClient>();
    assert_clone_send_sync::<CommunicationIdentityClientOptions>();

    let fake = FakeHttpClient::replying(204, "");
    let client = client(&fake);
    let user = user();
    let parameters = GetTokenForTeamsUserOptions::new("t", "a", "u");
    assert_send(&client.create_user(None));
    assert_send(&client.create_user_and_token(&[], None));
    assert_send(&client.get_token(&user, &[], None));
    assert_send(&client.revoke_tokens(&user, None));
    assert_send(&client.delete_user(&user, None));
    assert_send(&client.get_token_for_teams_user(&parameters, None));
    assert_send(&client.get_user_detail(&user, None));
    assert_send(&client.validate_token("t", None));
}

#[tokio::test]
async fn user_ids_cannot_change_the_request_path() {
    let fake = FakeHttpClient::replying(204, "");
    let tricky = CommunicationUserIdentifier::new(":revokeAccessTokens/../x?api-version=1#f é");
    client(&fake).delete_user(&tricky, None).await.unwrap();
    let request = fake.only_request();
    assert_eq!(
        request.url().path(),
        "/identities/%3ArevokeAccessTokens%2F..%2Fx%3Fapi-version%3D1%23f%20%C3%A9"
    );
    assert_eq!(request.url().query(), Some(format!("api-version={DEFAULT_API_VERSION}").as_str()));
    assert_signed(&request);
}

// ---- validate_token (acs-identity extension) -----------------------------------------------

#[tokio::test]
async fn validate_token_posts_the_token_and_reads_a_valid_verdict() {
    let fake = FakeHttpClient::replying(
        200,
        r#"{"valid":true,"identity":{"id":"8:acs:r_u"},"scopes":["chat","voip.join"],"expiresOn":"2022-09-07T14:34:56.2714874+00:00"}"#,
    );
    let verdict = client(&fake).validate_token(JWT, None).await.unwrap().into_model().unwrap();
    assert!(verdict.valid);
    assert_eq!(verdict.user, Some(CommunicationUserIdentifier::new("8:acs:r_u")));
    assert_eq!(verdict.scopes, [CommunicationTokenScope::Chat, CommunicationTokenScope::VoIPJoin]);
    assert_eq!(verdict.expires_on, Some(azure_core::time::parse_rfc3339(EXPIRES_ON).unwrap()));
    assert_eq!(verdict.reason, None);

    let request = fake.only_request();
    assert_target(&request, Method::Post, "/accessTokens/:validate", DEFAULT_API_VERSION);
    assert_eq!(body_str(&request), format!(r#"{{"token":"{JWT}"}}"#));
    assert_eq!(header(&request, "content-type"), Some("application/json"));
    assert_signed(&request);
}

#[tokio::test]
async fn validate_token_reads_an_invalid_verdict_and_refuses_an_empty_token() {
    let fake = FakeHttpClient::replying(200, r#"{"valid":false,"reason":"revoked"}"#);
    let client = client(&fake);
    let verdict = client.validate_token(JWT, None).await.unwrap().into_model().unwrap();
    assert!(!verdict.valid);
    assert_eq!(verdict.reason.as_deref(), Some("revoked"));
    assert_eq!((verdict.user, verdict.expires_on), (None, None));
    assert!(verdict.scopes.is_empty());

    let error = client.validate_token("", None).await.unwrap_err();
    assert!(error.to_string().contains("must not be empty"), "{error}");
    assert_eq!(fake.requests().len(), 1, "the empty token is not sent");
}

#[tokio::test]
async fn validate_token_surfaces_service_errors() {
    let fake = FakeHttpClient::replying(
        404,
        r#"{"error":{"code":"NotFound","message":"The requested resource does not exist."}}"#,
    );
    let error = client(&fake).validate_token(JWT, None).await.unwrap_err();
    assert_http_error(&error, 404, Some("NotFound"));
}

// ---- assignments ----------------------------------------------------------------------------

const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const OBJECT: &str = "66666666-7777-8888-9999-000000000000";
const CLIENT_ID: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

#[tokio::test]
async fn teams_extension_assignment_requests_are_signed_puts_gets_and_deletes() {
    use crate::models::{TeamsExtensionAssignmentRequest, TeamsExtensionPrincipalType};
    let fake = FakeHttpClient::new(|_, request| {
        let body = r#"{"objectId":"66666666-7777-8888-9999-000000000000","tenantId":"11111111-2222-3333-4444-555555555555","principalType":"resourceAccount"}"#;
        Ok(match request.method() {
            Method::Delete => response(204, ""),
            Method::Get => response(200, body),
            _ => response(
                201,
                r#"{"objectId":"66666666-7777-8888-9999-000000000000","tenantId":"11111111-2222-3333-4444-555555555555","principalType":"resourceAccount"}"#,
            ),
        })
    });
    let client = client(&fake);
    let request = TeamsExtensionAssignmentRequest::new(
        TeamsExtensionPrincipalType::ResourceAccount,
        Some(vec![CLIENT_ID.to_owned()]),
    );
    let created = client
        .create_or_replace_teams_extension_assignment(TENANT, OBJECT, &request, None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(created.principal_type, TeamsExtensionPrincipalType::ResourceAccount);
    assert_eq!(created.client_ids, None);
    client.get_teams_extension_assignment(TENANT, OBJECT, None).await.unwrap();
    client.delete_teams_extension_assignment(TENANT, OBJECT, None).await.unwrap();

    let requests = fake.requests();
    let path = format!("/access/teamsExtension/tenants/{TENANT}/assignments/{OBJECT}");
    for (request, method) in requests.iter().zip([Method::Put, Method::Get, Method::Delete]) {
        assert_target(request, method, &path, DEFAULT_API_VERSION);
        assert_signed(request);
    }
    assert_eq!(
        body_str(&requests[0]),
        format!(r#"{{"principalType":"resourceAccount","clientIds":["{CLIENT_ID}"]}}"#)
    );
    assert_eq!(header(&requests[0], "content-type"), Some("application/json"));

    // Empty ids and versions without the routes fail before sending.
    assert!(client.get_teams_extension_assignment("", OBJECT, None).await.is_err());
    let mut options = options_with(&fake);
    options.api_version = "2023-10-01".to_owned();
    let old = client_with(&fake, options);
    assert!(old.delete_teams_extension_assignment(TENANT, OBJECT, None).await.is_err());
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn entra_assignment_patch_is_a_signed_merge_patch() {
    use crate::models::{EntraAssignmentChanges, EntraAssignmentRequest, EntraPrincipalType};
    let first = r#"{"value":[{"objectId":"66666666-7777-8888-9999-000000000000","tenantId":"11111111-2222-3333-4444-555555555555","principalType":"group","clientIds":["aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"]}]}"#;
    let fake = FakeHttpClient::replying_first((200, first), (204, ""));
    let client = preview_client(&fake);
    let changes = EntraAssignmentChanges::from([
        (
            OBJECT.to_owned(),
            Some(EntraAssignmentRequest::new(
                TENANT,
                EntraPrincipalType::Group,
                vec![CLIENT_ID.to_owned()],
            )),
        ),
        (TENANT.to_owned(), None),
    ]);
    let upserted = client.update_entra_assignments(&changes, None).await.unwrap();
    assert_eq!(upserted.len(), 1);
    assert_eq!(upserted[0].principal_type, EntraPrincipalType::Group);
    let removals = EntraAssignmentChanges::from([(TENANT.to_owned(), None)]);
    assert!(client.update_entra_assignments(&removals, None).await.unwrap().is_empty());

    let request = &fake.requests()[0];
    assert_target(request, Method::Patch, "/access/entra/assignments", "2025-03-02-preview");
    assert_signed(request);
    assert_eq!(header(request, "content-type"), Some("application/merge-patch+json"));
    assert_eq!(
        body_str(request),
        format!(
            r#"{{"{TENANT}":null,"{OBJECT}":{{"tenantId":"{TENANT}","principalType":"group","clientIds":["{CLIENT_ID}"]}}}}"#
        )
    );
    assert!(client.update_entra_assignments(&EntraAssignmentChanges::new(), None).await.is_err());
    // The default (stable) version has no Entra user access.
    let stable = self::client(&fake);
    assert!(stable.update_entra_assignments(&removals, None).await.is_err());
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn entra_assignment_pages_follow_next_link_on_the_clients_endpoint() {
    use futures::TryStreamExt as _;
    let first = r#"{"value":[{"objectId":"a","tenantId":"t","principalType":"user","clientIds":["c"]}],"nextLink":"https://elsewhere.example/access/entra/assignments?api-version=2025-03-02-preview&maxpagesize=1&continuationToken=a"}"#;
    let then =
        r#"{"value":[{"objectId":"b","tenantId":"t","principalType":"tenant","clientIds":["c"]}]}"#;
    let fake = FakeHttpClient::replying_first((200, first), (200, then));
    let client = preview_client(&fake);
    let options = crate::models::CommunicationIdentityClientListEntraAssignmentsOptions {
        max_page_size: Some(1),
        ..Default::default()
    };
    let items: Vec<_> =
        client.list_entra_assignments(Some(options)).unwrap().try_collect().await.unwrap();
    let ids: Vec<_> = items.iter().map(|a| a.object_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);

    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].url().query(), Some("api-version=2025-03-02-preview&maxpagesize=1"));
    let next = requests[1].url();
    assert_eq!(next.host_str(), Some("contoso.communication.azure.com"));
    assert_eq!(next.path(), "/access/entra/assignments");
    assert_eq!(
        next.query(),
        Some("api-version=2025-03-02-preview&maxpagesize=1&continuationToken=a")
    );
    for request in &requests {
        assert_signed(request);
    }
}

/// The client's version gates say what the service's operation table says, for every version
/// the client knows; every known version is one the service serves.
#[test]
fn feature_gates_match_the_service_for_every_known_version() {
    use acs_identity_core::ApiVersion;
    use acs_identity_server::operation::Operation;

    for &known in SUPPORTED_API_VERSIONS {
        let version: ApiVersion = known.parse().expect("a version the service serves");
        for feature in Feature::ALL {
            let service = match feature {
                Feature::TeamsUserExchange => version.teams_exchange_requires_app_and_user(),
                Feature::CustomExpiry => version.has_custom_expiry(),
                Feature::CustomId => version.has_custom_id(),
                Feature::GetUserDetail => Operation::GetIdentity.spec().serves(version),
                Feature::TeamsExtension => {
                    Operation::PutTeamsExtensionAssignment.spec().serves(version)
                }
                Feature::EntraAccess => Operation::PutEntraAssignment.spec().serves(version),
            };
            assert_eq!(feature.exists_in(known), Some(service), "{feature:?} in {known}");
        }
    }
    // Oldest first, like the service's list, so "from a version on" is a comparison.
    let served: Vec<&str> = ApiVersion::ALL.into_iter().map(ApiVersion::as_str).collect();
    let positions: Vec<usize> = SUPPORTED_API_VERSIONS
        .iter()
        .map(|v| served.iter().position(|s| s == v).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{SUPPORTED_API_VERSIONS:?}");
    assert_eq!(SUPPORTED_API_VERSIONS.last(), Some(&DEFAULT_API_VERSION));
    assert_eq!(Feature::CustomId.exists_in("2099-01-01"), None);
}
