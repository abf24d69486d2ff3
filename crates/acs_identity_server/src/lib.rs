//! The acs-identity service as a library.
//!
//! [`app`] builds the axum router over an [`AppState`]; [`serve::Server`] binds the
//! HTTPS (and optional HTTP) listeners and shuts down gracefully. The binary in
//! `acs_identity_cli` is a thin wrapper around [`serve::Server::start`].

pub mod activity;
pub mod api;
pub mod audit;
mod auth;
pub mod cache;
pub mod config;
mod cors;
pub mod dev;
pub mod entra;
pub mod error;
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
