#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod clock;
pub mod connection_string;
pub mod credential;
pub mod entra;
pub mod hmac;
pub mod identifier;
pub mod transport;

pub use clock::{Clock, SystemClock};
pub use connection_string::ConnectionString;
pub use credential::{
    CommunicationTokenCredential, CommunicationTokenRefreshOptions, TokenRefresher,
};
pub use hmac::{CommunicationKeyCredential, HmacAuthenticationPolicy};
pub use identifier::{
    CommunicationCloudEnvironment, CommunicationIdentifier, CommunicationUserIdentifier,
    MicrosoftTeamsAppIdentifier, MicrosoftTeamsUserIdentifier, PhoneNumberIdentifier,
    TeamsExtensionUserIdentifier, UnknownIdentifier,
};
