//! The Entra proxy (`entra_proxy_listen`): an HTTP `CONNECT` proxy that answers for Entra's
//! public-cloud host names itself.
//!
//! Code that calls `DefaultAzureCredential()` or MSAL with no options first asks
//! `https://login.microsoftonline.com` (instance discovery), and no environment variable turns
//! that off; every Azure library honours `HTTPS_PROXY`, though. So a tunnel to one of
//! [`PUBLIC_CLOUD_HOSTS`] on port 443 is terminated here, with a certificate for those names
//! issued by the development CA, and its requests are served by the authority's own routes
//! (which then name the host the client asked for in their documents). A tunnel to one of the
//! service's own listeners is passed on to it, so the Identity API works with the same
//! `HTTPS_PROXY`. Anything else is refused with `403`: the proxy never connects beyond this
//! service.
//!
//! msal-node's own proxy support (`system.proxyUrl`) names no port in its `CONNECT` and then
//! speaks plain HTTP inside the tunnel; both are accepted for Entra's host names, so that
//! configuration works too (the tunnel never leaves the machine either way).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;

use super::endpoints::Proxied;
use super::{Authority, PUBLIC_CLOUD_HOSTS};

/// How long a TLS handshake inside a tunnel may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a tunnelled connection to the authority may wait for a request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the proxy needs: the authority, the TLS configuration for Entra's host names and the
/// service's own listeners.
#[derive(Clone)]
pub struct EntraProxy {
    authority: Router,
    tls: TlsAcceptor,
    local: Vec<SocketAddr>,
}

impl std::fmt::Debug for EntraProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraProxy").field("local", &self.local).finish_non_exhaustive()
    }
}

impl EntraProxy {
    /// A proxy serving `authority`'s routes with `tls` (a certificate for
    /// [`PUBLIC_CLOUD_HOSTS`]) and passing tunnels to the listeners `local` on.
    pub fn new(
        authority: Arc<Authority>,
        tls: Arc<rustls::ServerConfig>,
        local: Vec<SocketAddr>,
    ) -> EntraProxy {
        EntraProxy { authority: super::router(authority), tls: TlsAcceptor::from(tls), local }
    }

    /// The proxy's router: every request goes to one handler, which reads `CONNECT`s.
    pub fn router(self) -> Router {
        Router::new().fallback(connect).with_state(Arc::new(self))
    }
}

/// Where a tunnel to `host:port` goes, if anywhere, given the service's listeners `local`.
fn target(local: &[SocketAddr], host: &str, port: u16) -> Option<Target> {
    let host = host.to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    if let Some(known) = PUBLIC_CLOUD_HOSTS.iter().find(|h| **h == host) {
        return (port == 443).then_some(Target::Authority(known));
    }
    let ips: Vec<IpAddr> = match host {
        "localhost" => vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
        other => vec![other.trim_start_matches('[').trim_end_matches(']').parse().ok()?],
    };
    local.iter().find_map(|listener| {
        if listener.port() != port {
            return None;
        }
        // A wildcard listener is reached on the loopback address of its family.
        let ip = ips.iter().find(|ip| {
            **ip == listener.ip()
                || (ip.is_loopback()
                    && listener.ip().is_unspecified()
                    && ip.is_ipv4() == listener.ip().is_ipv4())
        })?;
        Some(Target::Local(SocketAddr::new(*ip, port)))
    })
}

/// Where a tunnel goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// Terminated here and served by the authority as this Entra host.
    Authority(&'static str),
    /// One of the service's own listeners.
    Local(SocketAddr),
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message).into_response()
}

async fn connect(State(proxy): State<Arc<EntraProxy>>, request: Request) -> Response {
    if request.method() != Method::CONNECT {
        return refuse(
            StatusCode::FORBIDDEN,
            "The acs-identity Entra proxy only opens tunnels (CONNECT) to Entra's host names and \
             to this service.\n"
                .to_owned(),
        );
    }
    // msal-node names no port: Entra's hosts are on 443.
    let Some((host, port)) =
        request.uri().authority().map(|a| (a.host().to_owned(), a.port_u16().unwrap_or(443)))
    else {
        return refuse(StatusCode::BAD_REQUEST, "CONNECT needs a host:port target.\n".to_owned());
    };
    let Some(target) = target(&proxy.local, &host, port) else {
        tracing::info!(%host, port, "Entra proxy refused a tunnel");
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "The acs-identity Entra proxy does not connect to {host}:{port}: it answers only \
                 for {} on port 443 and tunnels only to this service's own listeners.\n",
                PUBLIC_CLOUD_HOSTS.join(", ")
            ),
        );
    };
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(request).await {
            Ok(upgraded) => TokioIo::new(upgraded),
            Err(e) => {
                tracing::debug!(error = %e, "Entra proxy: the tunnel was not opened");
                return;
            }
        };
        match target {
            Target::Authority(host) => serve_authority(&proxy, upgraded, host).await,
            Target::Local(addr) => {
                let mut upgraded = upgraded;
                match tokio::net::TcpStream::connect(addr).await {
                    Ok(mut local) => {
                        let _ = tokio::io::copy_bidirectional(&mut upgraded, &mut local).await;
                    }
                    Err(e) => {
                        tracing::warn!(%addr, error = %e, "Entra proxy cannot reach the service")
                    }
                }
            }
        }
    });
    StatusCode::OK.into_response()
}

/// Serves the authority's routes as `host` on a tunnel: over TLS when the client starts a
/// handshake (a TLS record starts with 22), else plain HTTP (msal-node's proxy mode).
async fn serve_authority<I>(proxy: &EntraProxy, mut io: I, host: &'static str)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, io.read_exact(&mut first)).await {
        Ok(Ok(_)) => {}
        _ => return,
    }
    let io = Prefixed { first: Some(first[0]), io };
    let router = proxy.authority.clone().layer(Extension(Proxied { host }));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(IDLE_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let service = TowerToHyperService::new(router);
    let served = if first[0] == 22 {
        let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, proxy.tls.accept(io)).await
        else {
            tracing::debug!(host, "Entra proxy: no TLS handshake in the tunnel");
            return;
        };
        builder.serve_connection(TokioIo::new(tls), service).await
    } else {
        builder.serve_connection(TokioIo::new(io), service).await
    };
    if let Err(e) = served {
        tracing::debug!(host, error = %e, "Entra proxy: tunnelled connection ended");
    }
}

/// `io` with one byte already read from it put back in front.
struct Prefixed<I> {
    first: Option<u8>,
    io: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(byte) = self.first.filter(|_| buf.remaining() > 0) {
            buf.put_slice(&[byte]);
            self.first = None;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_entras_hosts_on_443_and_the_services_listeners_are_reachable() {
        let local: Vec<SocketAddr> =
            vec!["127.0.0.1:8443".parse().unwrap(), "0.0.0.0:8444".parse().unwrap()];
        let t = |host: &str, port: u16| target(&local, host, port);
        assert_eq!(
            t("login.microsoftonline.com", 443),
            Some(Target::Authority("login.microsoftonline.com"))
        );
        assert_eq!(t("LOGIN.windows.net.", 443), Some(Target::Authority("login.windows.net")));
        assert_eq!(t("login.microsoftonline.com", 8443), None);
        assert_eq!(t("login.microsoftonline.us", 443), None);
        assert_eq!(t("graph.microsoft.com", 443), None);
        assert_eq!(t("127.0.0.1", 8443), Some(Target::Local("127.0.0.1:8443".parse().unwrap())));
        assert_eq!(t("localhost", 8443), Some(Target::Local("127.0.0.1:8443".parse().unwrap())));
        assert_eq!(t("127.0.0.1", 8444), Some(Target::Local("127.0.0.1:8444".parse().unwrap())));
        assert_eq!(t("[::1]", 8444), None, "an IPv4 wildcard is not reached over IPv6");
        assert_eq!(t("127.0.0.1", 22), None);
        assert_eq!(t("10.0.0.1", 8443), None);
        assert_eq!(t("example.com", 8443), None);
    }
}
