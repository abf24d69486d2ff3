//! The acs-identity service as a library.
//!
//! [`app`] builds the axum router over an [`AppState`]; [`serve::Server`] binds the
//! HTTPS (and optional HTTP) listeners and shuts down gracefully. The binary in
//! `acs_identity_cli` is a thin wrapper around [`serve::Server::start`].
//!
//! # Compatibility
//!
//! The service speaks the ACS Identity wire protocol. The test suite runs the official
//! Python and JavaScript SDKs against it; the .NET and Java SDKs are not run, only
//! requests shaped as their sources build them:
//!
//! | SDK | version | in the test suite | covered |
//! |---|---|---|---|
//! | Python `azure-communication-identity` | 1.5.0 | run, sync and async clients | users, tokens, revoke, delete, api-versions 2021-03-07 to 2023-10-01, Entra client, Teams user exchange; the async client's decoded path |
//! | JavaScript `@azure/communication-identity`, `-common` | 1.3.1, 2.4.2 | run in Node.js | the same, plus Teams Phone extensibility and Entra user exchanges; `Host: host:port:port` |
//! | JavaScript in a browser | – | not run yet | – |
//! | .NET `Azure.Communication.Identity` | 1.4.0-beta.1 (source) | not run; request-shape cases | every identity operation signed over `host:port` and the path as sent, api-versions 2023-10-01 and 2025-03-02-preview |
//! | Java `azure-communication-identity` | 1.6.0 (source) | not run; request-shape cases | every identity operation with a port-less `Host`, signed so, and `:` unescaped in the path |
//!
//! The request-shape cases are in `tests/it/auth.rs` (`dotnet_and_java_request_shapes_are_accepted`,
//! `sdk_host_and_path_variants_are_accepted`); the repository README has the details.

pub mod activity;
pub mod api;
pub mod audit;
mod auth;
pub mod authority;
pub mod cache;
pub mod config;
mod cors;
pub mod dev;
pub mod entra;
pub mod error;
pub mod key_sync;
mod layers;
mod limits;
pub mod operation;
mod routes;
pub mod serve;
pub mod state;
pub mod throttle;
pub mod tls;
pub mod token_marks;
pub mod transport;

pub use config::Config;
pub use routes::app;
pub use state::AppState;
