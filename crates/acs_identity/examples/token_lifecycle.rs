//! Walks through the life of a user: create, issue tokens, revoke them, delete the user.
//!
//! ```sh
//! export COMMUNICATION_SERVICES_CONNECTION_STRING="endpoint=https://<resource>.communication.azure.com/;accesskey=<key>"
//! cargo run -p acs_identity --example token_lifecycle
//! ```

use acs_identity::{
    models::{CommunicationIdentityClientGetTokenOptions, CommunicationTokenScope},
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
    println!("endpoint: {}, api-version: {}", client.endpoint(), client.api_version());

    let user = client.create_user(None).await?.into_model()?;
    println!("1. created user {}", user.id);

    let chat =
        client.get_token(&user, &[CommunicationTokenScope::Chat], None).await?.into_model()?;
    println!("2. chat token (default lifetime) expires on {}", chat.expires_on);

    let options = CommunicationIdentityClientGetTokenOptions {
        expires_in: Some(Duration::hours(1)),
        ..Default::default()
    };
    let response =
        client.get_token(&user, &[CommunicationTokenScope::VoIPJoin], Some(options)).await?;
    println!("3. the service answered {}", response.status());
    let voip = response.into_model()?;
    println!("   one-hour voip.join token expires on {}", voip.expires_on);

    client.revoke_tokens(&user, None).await?;
    println!("4. revoked all tokens issued so far");

    client.delete_user(&user, None).await?;
    println!("5. deleted the user");
    Ok(())
}
