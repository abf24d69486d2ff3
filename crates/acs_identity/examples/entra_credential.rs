//! Calls the Identity API with an Entra ID credential (`azure_identity`'s
//! `ClientSecretCredential`) instead of an access key: creates a user and deletes it.
//!
//! Against Azure, with an application allowed to call the resource:
//!
//! ```sh
//! export COMMUNICATION_SERVICES_ENDPOINT=https://<resource>.communication.azure.com
//! export AZURE_TENANT_ID=<tenant id> AZURE_CLIENT_ID=<client id> AZURE_CLIENT_SECRET=<secret>
//! cargo run -p acs_identity --example entra_credential
//! ```
//!
//! Offline, against `acs-identity serve --in-memory --dev --entra-listen 127.0.0.1:8444` and
//! its built-in Entra authority: the same code, with the authority host and the development CA
//! in the environment (`ClientSecretCredential` reads `AZURE_AUTHORITY_HOST` and never asks
//! for instance discovery; both transports trust `SSL_CERT_FILE`), and the development
//! tenant, application and secret of the README:
//!
//! ```sh
//! export COMMUNICATION_SERVICES_ENDPOINT=https://127.0.0.1:8443 SSL_CERT_FILE=<caFile>
//! export AZURE_AUTHORITY_HOST=https://127.0.0.1:8444
//! export AZURE_TENANT_ID=ac5de7e1-0000-4000-8000-000000000010
//! export AZURE_CLIENT_ID=ac5de7e1-0000-4000-8000-000000000020
//! export AZURE_CLIENT_SECRET='acsid~dev~client~secret~0000000000000001'
//! cargo run -p acs_identity --example entra_credential
//! ```
//!
//! With `--entra-proxy-listen 127.0.0.1:3128`, `HTTPS_PROXY=http://127.0.0.1:3128` instead of
//! `AZURE_AUTHORITY_HOST` works too: the credential asks `login.microsoftonline.com`, which
//! the proxy answers.

use acs_identity::{CommunicationIdentityClient, CommunicationIdentityClientOptions};
use azure_core::credentials::Secret;
use azure_core::http::ClientOptions;
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};

/// The application's Entra credentials (`Debug` shows no secret).
#[derive(Debug)]
pub struct EntraApplication {
    /// The tenant (directory) id.
    pub tenant_id: String,
    /// The application (client) id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
}

/// Creates a user of the resource at `endpoint` with a token of `app`, and deletes it; returns
/// the user's id. `client_options` go to both the credential and the client (transport,
/// retries, cloud).
pub async fn create_and_delete_user(
    endpoint: &str,
    app: EntraApplication,
    client_options: ClientOptions,
) -> Result<String, Box<dyn std::error::Error>> {
    let credential = ClientSecretCredential::new(
        &app.tenant_id,
        app.client_id,
        app.client_secret,
        Some(ClientSecretCredentialOptions { client_options: client_options.clone() }),
    )?;
    let options = CommunicationIdentityClientOptions { client_options, ..Default::default() };
    let client = CommunicationIdentityClient::new(endpoint, credential, Some(options))?;
    let user = client.create_user(None).await?.into_model()?;
    client.delete_user(&user, None).await?;
    Ok(user.id)
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name} (see the example's documentation)"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = env("COMMUNICATION_SERVICES_ENDPOINT")?;
    let app = EntraApplication {
        tenant_id: env("AZURE_TENANT_ID")?,
        client_id: env("AZURE_CLIENT_ID")?,
        client_secret: Secret::new(env("AZURE_CLIENT_SECRET")?),
    };
    let id = create_and_delete_user(&endpoint, app, ClientOptions::default()).await?;
    println!("created and deleted user {id}, authenticated by Entra ID");
    Ok(())
}
