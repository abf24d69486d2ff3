//! Domain rules of the acs-identity service.
//!
//! Everything here is pure: parsing and validating what arrives on the wire,
//! issuing and verifying access tokens, verifying HMAC-SHA256 request
//! signatures, and the storage traits the server is written against.
//! This crate does no IO; time comes in through [`clock::Clock`].

pub mod api_version;
pub mod clock;
pub mod entra;
pub mod hmac;
pub mod id;
mod jws;
pub mod scope;
pub mod store;
pub mod time_format;
pub mod token;

pub use api_version::ApiVersion;
pub use clock::{Clock, ManualClock, SystemClock};
pub use id::{ParsedIdentity, ResourceId, UserId};
pub use scope::{Scope, ScopeError, Scopes, TokenLifetime};
