//! Integration tests: the real service on 127.0.0.1:0, driven over HTTPS and HTTP with
//! real HMAC signatures.

mod audit;
mod auth;
mod authority;
mod cors;
mod entra;
mod errors;
mod extensions;
mod identities;
mod lifecycle;
mod limits;
mod log_secrets;
mod openapi;
mod operations;
mod rotation;
mod tokens;
