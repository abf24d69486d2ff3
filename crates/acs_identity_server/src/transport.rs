//! Which listener a request arrived on.

/// Which listener a request arrived on: a request extension set by `serve`, read by
/// authentication (bearer tokens only over HTTPS) and by links the service writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The HTTPS listener.
    Https,
    /// The plain-HTTP listener.
    Http,
}

impl Transport {
    /// The URL scheme of the listener.
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Https => "https",
            Transport::Http => "http",
        }
    }
}
