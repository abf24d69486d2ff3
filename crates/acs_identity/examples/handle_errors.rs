//! Shows how failures look: client-side validation and service errors with status and code.
//!
//! ```sh
//! export COMMUNICATION_SERVICES_CONNECTION_STRING="endpoint=https://<resource>.communication.azure.com/;accesskey=<key>"
//! cargo run -p acs_identity --example handle_errors
//! ```

use acs_identity::{
    models::{CommunicationIdentityClientGetTokenOptions, CommunicationTokenScope},
    CommunicationIdentityClient, CommunicationUserIdentifier,
};
use azure_core::{
    error::{ErrorKind, ErrorResponse},
    time::Duration,
};

fn describe(error: azure_core::Error) {
    match error.kind() {
        ErrorKind::HttpResponse { status, error_code, .. } => {
            println!("   service said {status}, code {error_code:?}: {error}");
            if let Ok(ErrorResponse { error: Some(detail) }) = ErrorResponse::try_from(error) {
                println!("   target: {:?}", detail.target);
            }
        }
        other => println!("   {other:?}: {error}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let connection_string =
        std::env::var("COMMUNICATION_SERVICES_CONNECTION_STRING").map_err(|_| {
            "set COMMUNICATION_SERVICES_CONNECTION_STRING to the resource's connection string"
        })?;
    let client = CommunicationIdentityClient::from_connection_string(&connection_string, None)?;

    println!("1. a token lifetime outside [1, 24] hours is rejected before sending:");
    let user = client.create_user(None).await?.into_model()?;
    let options = CommunicationIdentityClientGetTokenOptions {
        expires_in: Some(Duration::minutes(59)),
        ..Default::default()
    };
    if let Err(error) =
        client.get_token(&user, &[CommunicationTokenScope::Chat], Some(options)).await
    {
        describe(error);
    }

    println!("2. a token without scopes is rejected by the service:");
    if let Err(error) = client.get_token(&user, &[], None).await {
        describe(error);
    }

    println!("3. a user of another resource is not ours to delete:");
    let stranger = CommunicationUserIdentifier::new(
        "8:acs:00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000001",
    );
    if let Err(error) = client.delete_user(&stranger, None).await {
        describe(error);
    }

    client.delete_user(&user, None).await?;
    Ok(())
}
