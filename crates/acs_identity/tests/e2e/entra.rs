//! Entra ID: the client authenticated by a `TokenCredential`, the Teams user exchange, the
//! assignment operations, and the Entra exchange credential of `acs_common`, against a service
//! that trusts a local OpenID issuer (`acs_identity_testkit::TestIssuer`).

use super::*;
use acs_identity::acs_common::entra::EntraCommunicationTokenCredentialOptions;
use acs_identity::acs_common::CommunicationTokenCredential;
use acs_identity::models::{
    CommunicationIdentityClientListEntraAssignmentsOptions, EntraAssignmentChanges,
    EntraAssignmentRequest, EntraPrincipalType, TeamsExtensionAssignmentRequest,
    TeamsExtensionPrincipalType,
};
use acs_identity_testkit::issuer::{IssuerCredential, TEAMS_AUDIENCE};
use acs_identity_testkit::{uuid_like, TestIssuer};
use futures::TryStreamExt as _;

const TEAMS_EXTENSION_SCOPE: &str =
    "https://auth.msft.communication.azure.com/TeamsExtension.ManageCalls";

/// The service trusting a fresh issuer, and that issuer.
async fn trusting_server() -> (TestServer, Arc<TestIssuer>) {
    let (server, issuer) = TestServer::start_with_trusted_issuer().await;
    (server, Arc::new(issuer))
}

/// A credential exchanging `entra`'s tokens for `scope` at the service, over HTTPS.
fn exchange_credential(
    server: &TestServer,
    entra: Arc<IssuerCredential>,
    scope: &str,
) -> CommunicationTokenCredential {
    let options = EntraCommunicationTokenCredentialOptions::new(server.endpoint(), entra)
        .with_scopes([scope])
        .with_client_options(https_options(server, PREVIEW).client_options);
    CommunicationTokenCredential::with_entra_options(options).unwrap()
}

#[tokio::test]
async fn entra_token_credential_runs_the_lifecycle_over_https_only() {
    let (server, issuer) = trusting_server().await;
    let entra = IssuerCredential::new(&issuer, &uuid_like(), &uuid_like());
    let client = CommunicationIdentityClient::new(
        &server.endpoint(),
        entra.clone(),
        Some(https_options(&server, acs_identity::clients::DEFAULT_API_VERSION)),
    )
    .unwrap();

    run_lifecycle(&server, &client).await;
    assert!(entra.calls() >= 1, "the credential was asked for tokens");

    // azure_core's bearer policy never sends a token over plain HTTP (the service would refuse
    // it too): the call fails in the client.
    let plain =
        CommunicationIdentityClient::new(&server.http_endpoint(), entra.clone(), None).unwrap();
    let calls = entra.calls();
    let error = plain.create_user(None).await.unwrap_err();
    assert!(!matches!(error.kind(), ErrorKind::HttpResponse { .. }), "{error:?}");
    assert_eq!(entra.calls(), calls, "no token was requested");

    // A token of an issuer the service does not trust is refused.
    let stranger = Arc::new(TestIssuer::start().await);
    let untrusted = CommunicationIdentityClient::new(
        &server.endpoint(),
        IssuerCredential::new(&stranger, &uuid_like(), &uuid_like()),
        Some(https_options(&server, acs_identity::clients::DEFAULT_API_VERSION)),
    )
    .unwrap();
    let error = untrusted.create_user(None).await.unwrap_err();
    assert_http_error(&error, StatusCode::Unauthorized, "Denied");
}

#[tokio::test]
async fn teams_user_exchange_returns_a_token_for_the_teams_user() {
    let (server, issuer) = trusting_server().await;
    let client = https_client(&server);
    let (oid, app) = (uuid_like(), uuid_like());
    let teams_token = issuer.teams_token(&oid, &app, "Teams.ManageCalls");

    let parameters = GetTokenForTeamsUserOptions::new(teams_token.clone(), &app, &oid);
    let token =
        client.get_token_for_teams_user(&parameters, None).await.unwrap().into_model().unwrap();
    let claims = jwt_payload(token.token.secret());
    assert_eq!(claims["skypeid"], format!("orgid:{oid}"), "{claims}");
    assert_expires_in(token.expires_on, Duration::hours(1));

    // The service checks the app id and the user id against the token.
    let wrong_app = GetTokenForTeamsUserOptions::new(teams_token.clone(), uuid_like(), &oid);
    let error = client.get_token_for_teams_user(&wrong_app, None).await.unwrap_err();
    assert_http_error(&error, StatusCode::BadRequest, "ValidationError");
    let wrong_user = GetTokenForTeamsUserOptions::new(teams_token, &app, uuid_like());
    let error = client.get_token_for_teams_user(&wrong_user, None).await.unwrap_err();
    assert_http_error(&error, StatusCode::BadRequest, "ValidationError");

    let mut expired = issuer.claims(TEAMS_AUDIENCE, &oid, &app, "Teams.ManageCalls");
    expired["exp"] = (SystemClock.now() - Duration::minutes(10)).unix_timestamp().into();
    let expired = GetTokenForTeamsUserOptions::new(issuer.mint(&expired), &app, &oid);
    let error = client.get_token_for_teams_user(&expired, None).await.unwrap_err();
    assert_http_error(&error, StatusCode::Unauthorized, "InvalidAccessToken");
}

#[tokio::test]
async fn teams_extension_assignments_gate_the_exchange() {
    let (server, issuer) = trusting_server().await;
    let client = https_client(&server);
    let tenant = issuer.tenant_id().to_owned();
    let (oid, app) = (uuid_like(), uuid_like());
    let entra = IssuerCredential::new(&issuer, &oid, &app);

    // Not assigned yet: the exchange is refused.
    let credential = exchange_credential(&server, entra.clone(), TEAMS_EXTENSION_SCOPE);
    let error = credential.get_token().await.unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::HttpResponse { status: StatusCode::Forbidden, .. }));
    let error = client.get_teams_extension_assignment(&tenant, &oid, None).await.unwrap_err();
    assert_http_error(&error, StatusCode::NotFound, "NotFound");

    let request = TeamsExtensionAssignmentRequest::new(
        TeamsExtensionPrincipalType::User,
        Some(vec![app.clone()]),
    );
    let created = client
        .create_or_replace_teams_extension_assignment(&tenant, &oid, &request, None)
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::Created);
    let created = created.into_model().unwrap();
    assert_eq!((created.object_id.as_str(), created.tenant_id.as_str()), (&*oid, &*tenant));
    assert_eq!(created.client_ids.as_deref(), Some(&[app.clone()][..]));
    let replaced = client
        .create_or_replace_teams_extension_assignment(&tenant, &oid, &request, None)
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::Ok);
    let read = client.get_teams_extension_assignment(&tenant, &oid, None).await.unwrap();
    assert_eq!(read.into_model().unwrap(), created);

    // Assigned: the credential exchanges, and reuses the token while the Entra token is the same.
    let credential = exchange_credential(&server, entra.clone(), TEAMS_EXTENSION_SCOPE);
    let token = credential.get_token().await.unwrap();
    let claims = jwt_payload(token.token.secret());
    assert_eq!(claims["skypeid"], format!("acs:{}_{tenant}_{oid}", server.resource_id()));
    let verdict = client.validate_token(token.token.secret(), None).await.unwrap();
    assert!(verdict.into_model().unwrap().valid);

    // Another app of the same user is not among the assignment's client ids.
    let other_app = IssuerCredential::new(&issuer, &oid, &uuid_like());
    let error = exchange_credential(&server, other_app, TEAMS_EXTENSION_SCOPE)
        .get_token()
        .await
        .unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::HttpResponse { status: StatusCode::Forbidden, .. }));

    client.delete_teams_extension_assignment(&tenant, &oid, None).await.unwrap();
    let error =
        exchange_credential(&server, entra, TEAMS_EXTENSION_SCOPE).get_token().await.unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::HttpResponse { status: StatusCode::Forbidden, .. }));

    // Invalid ids are the service's 400; versions without the routes fail before sending.
    let error = client
        .create_or_replace_teams_extension_assignment(&tenant, "not-a-guid", &request, None)
        .await
        .unwrap_err();
    assert_http_error(&error, StatusCode::BadRequest, "ValidationError");
    let old = https_client_with(&server, "2023-10-01");
    let error = old.get_teams_extension_assignment(&tenant, &oid, None).await.unwrap_err();
    assert!(error.to_string().contains("2025-06-30 or later"), "{error}");
}

#[tokio::test]
async fn entra_assignments_list_in_pages_patch_and_gate_the_exchange() {
    let (server, issuer) = trusting_server().await;
    let client = https_client_with(&server, PREVIEW);
    let tenant = issuer.tenant_id().to_owned();
    let app = uuid_like();

    let mut users: Vec<String> = (0..5).map(|_| uuid_like()).collect();
    for (i, user) in users.iter().enumerate() {
        let request =
            EntraAssignmentRequest::new(&tenant, EntraPrincipalType::User, vec![app.clone()]);
        let response =
            client.create_or_replace_entra_assignment(user, &request, None).await.unwrap();
        assert_eq!(response.status(), StatusCode::Created, "assignment {i}");
    }
    users.sort();

    // Five assignments in pages of two: three requests, in object id order.
    let options = CommunicationIdentityClientListEntraAssignmentsOptions {
        max_page_size: Some(2),
        ..Default::default()
    };
    let (sizes, listed) = pages(client.list_entra_assignments(Some(options)).unwrap()).await;
    let listed: Vec<_> = listed.into_iter().map(|a| a.object_id).collect();
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(listed, users);
    let all: Vec<_> = client.list_entra_assignments(None).unwrap().try_collect().await.unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|a| a.principal_type == EntraPrincipalType::User));

    // One merge patch: two new assignments, one removed.
    let (new_a, new_b) = (uuid_like(), uuid_like());
    let mut changes = EntraAssignmentChanges::new();
    for id in [&new_a, &new_b] {
        let request =
            EntraAssignmentRequest::new(&tenant, EntraPrincipalType::User, vec![app.clone()]);
        changes.insert(id.clone(), Some(request));
    }
    changes.insert(users[0].clone(), None);
    let upserted = client.update_entra_assignments(&changes, None).await.unwrap();
    let mut upserted: Vec<_> = upserted.into_iter().map(|a| a.object_id).collect();
    upserted.sort();
    let mut expected = vec![new_a.clone(), new_b.clone()];
    expected.sort();
    assert_eq!(upserted, expected);
    let error = client.get_entra_assignment(&users[0], None).await.unwrap_err();
    assert_http_error(&error, StatusCode::NotFound, "NotFound");
    // Removals only: the service answers 204, the client an empty list.
    let removals = EntraAssignmentChanges::from([(new_b.clone(), None)]);
    assert!(client.update_entra_assignments(&removals, None).await.unwrap().is_empty());
    // An invalid change fails the whole patch and changes nothing.
    let bad =
        EntraAssignmentChanges::from([(users[1].clone(), None), ("not-a-guid".to_owned(), None)]);
    let error = client.update_entra_assignments(&bad, None).await.unwrap_err();
    assert_http_error(&error, StatusCode::BadRequest, "ValidationError");
    assert!(client.get_entra_assignment(&users[1], None).await.is_ok());

    // An assigned user exchanges with the default scope; an unassigned one is refused.
    let entra = IssuerCredential::new(&issuer, &new_a, &app);
    let options = EntraCommunicationTokenCredentialOptions::new(server.endpoint(), entra)
        .with_client_options(https_options(&server, PREVIEW).client_options);
    let credential = CommunicationTokenCredential::with_entra_options(options).unwrap();
    let token = credential.get_token().await.unwrap();
    let claims = jwt_payload(token.token.secret());
    assert_eq!(claims["skypeid"], format!("acs:{}_wf_{tenant}_{new_a}", server.resource_id()));
    let stranger = IssuerCredential::new(&issuer, &uuid_like(), &app);
    let options = EntraCommunicationTokenCredentialOptions::new(server.endpoint(), stranger)
        .with_client_options(https_options(&server, PREVIEW).client_options);
    let error = CommunicationTokenCredential::with_entra_options(options)
        .unwrap()
        .get_token()
        .await
        .unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::HttpResponse { status: StatusCode::Forbidden, .. }));

    client.delete_entra_assignment(&new_a, None).await.unwrap();
    let error = client.get_entra_assignment(&new_a, None).await.unwrap_err();
    assert_http_error(&error, StatusCode::NotFound, "NotFound");

    // Stable versions have no Entra user access; page sizes are checked before sending.
    let stable = https_client(&server);
    let error = stable.get_entra_assignment(&new_a, None).await.unwrap_err();
    assert!(error.to_string().contains("2025-03-02-preview"), "{error}");
    let options = CommunicationIdentityClientListEntraAssignmentsOptions {
        max_page_size: Some(0),
        ..Default::default()
    };
    assert!(client.list_entra_assignments(Some(options)).is_err());
}
