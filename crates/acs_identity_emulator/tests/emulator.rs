//! The emulator used as its README shows, over a socket and in process: users and tokens,
//! the development key, the api-version switch, the clock and injected faults with the
//! client's own retry policy.

use std::time::Duration;

use acs_identity::models::CommunicationTokenScope;
use acs_identity::{CommunicationIdentityClient, CommunicationIdentityClientOptions};
use acs_identity_emulator::{Emulator, Operation, DEV_PRIMARY_KEY, IN_PROCESS_ENDPOINT};
use azure_core::error::ErrorKind;
use azure_core::http::{RetryOptions, StatusCode};

const CHAT: [CommunicationTokenScope; 1] = [CommunicationTokenScope::Chat];

/// Both modes, each test run against each.
async fn both() -> [Emulator; 2] {
    [Emulator::start().await.unwrap(), Emulator::in_process().await.unwrap()]
}

/// A client without retries, to see the first answer.
fn no_retry(emulator: &Emulator) -> CommunicationIdentityClient {
    let mut options = emulator.client_options();
    options.client_options.retry = RetryOptions::none();
    emulator.client_with(options)
}

#[track_caller]
fn assert_status(error: &azure_core::Error, expected: StatusCode, code: &str) {
    match error.kind() {
        ErrorKind::HttpResponse { status, error_code, .. } => {
            assert_eq!(*status, expected, "{error}");
            assert_eq!(error_code.as_deref(), Some(code), "{error}");
        }
        other => panic!("expected an HTTP error, got {other:?}: {error}"),
    }
}

#[tokio::test]
async fn creates_a_user_and_a_token_in_both_modes() {
    for emulator in both().await {
        let client = emulator.client();
        let created =
            client.create_user_and_token(&CHAT, None).await.unwrap().into_model().unwrap();
        assert!(created.user.id.starts_with("8:acs:"), "{}", created.user.id);
        let verdict =
            client.validate_token(created.access_token.token.secret(), None).await.unwrap();
        let verdict = verdict.into_model().unwrap();
        assert!(verdict.valid, "{:?}", verdict.reason);
        assert_eq!(verdict.user.unwrap().id, created.user.id);
        // The key is checked: another key is refused with ACS's 401.
        let wrong = emulator.connection_string().replace("accesskey=", "accesskey=AAAA");
        let other = CommunicationIdentityClient::from_connection_string(
            &wrong,
            Some(emulator.client_options()),
        )
        .unwrap();
        let error = other.create_user(None).await.unwrap_err();
        assert_status(&error, StatusCode::Unauthorized, "Denied");
        emulator.shutdown().await;
    }
}

#[tokio::test]
async fn the_socket_mode_is_a_real_https_service() {
    let emulator = Emulator::start().await.unwrap();
    assert!(emulator.endpoint().starts_with("https://127.0.0.1:"));
    assert!(emulator
        .connection_string()
        .starts_with(&format!("endpoint={}/;", emulator.endpoint())));
    assert!(emulator.ca_pem().unwrap().contains("BEGIN CERTIFICATE"));
    // A client that does not trust the emulator's CA gets no answer.
    let untrusted = CommunicationIdentityClient::from_connection_string(
        &emulator.connection_string(),
        Some(CommunicationIdentityClientOptions::default()),
    )
    .unwrap();
    assert!(untrusted.create_user(None).await.is_err());
    // Two emulators are two resources.
    let other = Emulator::start().await.unwrap();
    assert_ne!(other.connection_string(), emulator.connection_string());

    let http = Emulator::builder().https(false).build().await.unwrap();
    assert!(http.endpoint().starts_with("http://127.0.0.1:"), "{}", http.endpoint());
    http.client().create_user(None).await.unwrap();

    // Dropping it stops it: the port no longer answers.
    let client = no_retry(&other);
    client.create_user(None).await.unwrap();
    drop(other);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let error = client.create_user(None).await.unwrap_err();
    assert!(!matches!(error.kind(), ErrorKind::HttpResponse { .. }), "{error}");
}

#[tokio::test]
#[should_panic(expected = "not an error status")]
async fn only_error_statuses_can_be_injected() {
    let emulator = Emulator::in_process().await.unwrap();
    emulator.fail_next(Operation::CreateIdentity, 200, 1);
}

#[tokio::test]
async fn in_process_needs_no_socket() {
    let emulator = Emulator::in_process().await.unwrap();
    assert_eq!(emulator.endpoint(), IN_PROCESS_ENDPOINT);
    assert!(emulator.ca_pem().is_none());
    // Many services side by side, each its own resource.
    let mut ids = std::collections::HashSet::new();
    for _ in 0..20 {
        let e = Emulator::in_process().await.unwrap();
        let user = e.client().create_user(None).await.unwrap().into_model().unwrap();
        assert!(ids.insert(user.id.split('_').next().unwrap().to_owned()));
    }
}

#[tokio::test]
async fn the_dev_key_and_the_api_version_switch() {
    for in_process in [false, true] {
        let dev = Emulator::builder().dev_key(true).in_process(in_process).build().await.unwrap();
        assert!(dev.connection_string().ends_with(&format!(";accesskey={DEV_PRIMARY_KEY}")));
        let user = dev.client().create_user(None).await.unwrap().into_model().unwrap();
        assert!(user.id.starts_with("8:acs:ac5de7e1-0000-4000-8000-000000000001_"), "{}", user.id);

        let newer = |e: &Emulator| {
            let mut options = e.client_options();
            options.api_version = "2099-01-01".to_owned();
            e.client_with(options)
        };
        let strict = Emulator::builder().in_process(in_process).build().await.unwrap();
        let error = newer(&strict).create_user(None).await.unwrap_err();
        assert_status(&error, StatusCode::BadRequest, "UnsupportedApiVersion");
        let lenient = Emulator::builder()
            .skip_api_version_check(true)
            .in_process(in_process)
            .build()
            .await
            .unwrap();
        newer(&lenient).create_user(None).await.unwrap();
    }
}

#[tokio::test]
async fn the_clock_moves_tokens_towards_expiry() {
    for emulator in both().await {
        let client = emulator.client();
        let user = client.create_user(None).await.unwrap().into_model().unwrap();
        let options = acs_identity::models::CommunicationIdentityClientGetTokenOptions {
            expires_in: Some(azure_core::time::Duration::minutes(60)),
            ..Default::default()
        };
        let token =
            client.get_token(&user, &CHAT, Some(options)).await.unwrap().into_model().unwrap();
        let before = emulator.now();
        emulator.advance(Duration::from_secs(59 * 60));
        assert!(emulator.now() - before >= azure_core::time::Duration::minutes(59));
        let verdict = client.validate_token(token.token.secret(), None).await.unwrap();
        assert!(verdict.into_model().unwrap().valid, "not yet expired");
        emulator.advance(Duration::from_secs(2 * 60));
        let verdict = client.validate_token(token.token.secret(), None).await.unwrap();
        assert_eq!(verdict.into_model().unwrap().reason.as_deref(), Some("expired"));
        // New tokens are issued from the service's time, and requests are still signed with
        // the real time.
        let fresh = client.get_token(&user, &CHAT, None).await.unwrap().into_model().unwrap();
        let expected = emulator.now() + azure_core::time::Duration::hours(24);
        assert!((fresh.expires_on - expected).abs() < azure_core::time::Duration::minutes(1));
    }
}

#[tokio::test]
async fn injected_faults_carry_acs_errors_and_the_retry_policy_rides_them_out() {
    for emulator in both().await {
        let client = emulator.client();
        let user = client.create_user(None).await.unwrap().into_model().unwrap();

        // The first answer, as the client sees it without retries.
        emulator.fail_next(Operation::IssueAccessToken, 429, 1);
        let error = no_retry(&emulator).get_token(&user, &CHAT, None).await.unwrap_err();
        assert_status(&error, StatusCode::TooManyRequests, "TooManyRequests");
        emulator.fail_next(Operation::CreateIdentity, 503, 1);
        let error = no_retry(&emulator).create_user(None).await.unwrap_err();
        assert_status(&error, StatusCode::ServiceUnavailable, "ServiceUnavailable");
        emulator.fail_next(Operation::RevokeAccessTokens, 500, 1);
        let error = no_retry(&emulator).revoke_tokens(&user, None).await.unwrap_err();
        assert_status(&error, StatusCode::InternalServerError, "InternalError");
        // Only the named operation fails.
        emulator.fail_next(Operation::DeleteIdentity, 503, 1);
        no_retry(&emulator).get_token(&user, &CHAT, None).await.unwrap();
        assert_eq!(emulator.pending_faults(Operation::DeleteIdentity), 1);

        // Three 429s with Retry-After: the default retry policy waits and succeeds.
        emulator.fail_next(Operation::IssueAccessToken, 429, 3);
        let token = client.get_token(&user, &CHAT, None).await.unwrap().into_model().unwrap();
        assert!(!token.token.secret().is_empty());
        assert_eq!(emulator.pending_faults(Operation::IssueAccessToken), 0);

        // More failures than the policy retries reach the caller.
        let mut few = emulator.client_options();
        few.client_options.retry = RetryOptions::fixed(azure_core::http::FixedRetryOptions {
            max_retries: 1,
            delay: azure_core::time::Duration::milliseconds(10),
            ..Default::default()
        });
        emulator.fail_next(Operation::IssueAccessToken, 503, 5);
        let error = emulator.client_with(few).get_token(&user, &CHAT, None).await.unwrap_err();
        assert_status(&error, StatusCode::ServiceUnavailable, "ServiceUnavailable");
        assert_eq!(emulator.pending_faults(Operation::IssueAccessToken), 3);
    }
}
