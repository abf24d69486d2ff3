//! Creates a user and its first access token in one request, then deletes the user.
//!
//! ```sh
//! export COMMUNICATION_SERVICES_CONNECTION_STRING="endpoint=https://<resource>.communication.azure.com/;accesskey=<key>"
//! cargo run -p acs_identity --example create_user_and_token
//! ```

use acs_identity::{
    models::{CommunicationIdentityClientCreateUserAndTokenOptions, CommunicationTokenScope},
    CommunicationIdentityClient,
};
use azure_core::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connection_string =
        std::env::var("COMMUNICATION_SERVICES_CONNECTION_STRING").map_err(|_| {
            "set COMMUNICATION_SERVICES_CONNECTION_STRING to the resource's connection string"
        })?;
    let client = CommunicationIdentityClient::from_connection_string(&connection_string, None)?;

    let options = CommunicationIdentityClientCreateUserAndTokenOptions {
        expires_in: Some(Duration::hours(2)),
        ..Default::default()
    };
    let result = client
        .create_user_and_token(
            &[CommunicationTokenScope::Chat, CommunicationTokenScope::VoIP],
            Some(options),
        )
        .await?
        .into_model()?;

    println!("created user {}", result.user.id);
    println!("its token expires on {}", result.access_token.expires_on);
    // The token itself is `result.access_token.token.secret()`: send it to the user's app,
    // never log it.

    client.delete_user(&result.user, None).await?;
    println!("deleted user {}", result.user.id);
    Ok(())
}
