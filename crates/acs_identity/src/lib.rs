#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod clients;
pub mod models;

pub use acs_common;
pub use acs_common::{
    hmac::CommunicationKeyCredential,
    identifier::{CommunicationIdentifier, CommunicationUserIdentifier},
};
pub use clients::{CommunicationIdentityClient, CommunicationIdentityClientOptions};
