//! An `azure_core` [`HttpClient`] that hands each request to the service's router in this
//! process: no socket, no TLS, the real service code.

use acs_identity_server::transport::Transport;
use async_trait::async_trait;
use axum::body::Body as AxumBody;
use axum::http::{self, HeaderName, HeaderValue};
use axum::Router;
use azure_core::error::{Error, ErrorKind};
use azure_core::http::headers::{self, Headers};
use azure_core::http::{AsyncRawResponse, Body, HttpClient, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Sends every request to an emulator's router in process; see
/// [`Emulator::http_client`](crate::Emulator::http_client).
///
/// Cheap to clone: clones share the router.
#[derive(Clone)]
pub struct InProcessClient {
    router: Router,
}

impl std::fmt::Debug for InProcessClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessClient").finish_non_exhaustive()
    }
}

impl InProcessClient {
    pub(crate) fn new(router: Router) -> Self {
        InProcessClient { router: router.layer(axum::Extension(Transport::Https)) }
    }
}

fn invalid(what: &str) -> Error {
    Error::with_message(ErrorKind::Other, format!("the request has an invalid {what}"))
}

#[async_trait]
impl HttpClient for InProcessClient {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let url = request.url();
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let body = match request.body() {
            Body::Bytes(bytes) => bytes.clone(),
            Body::SeekableStream(stream) => {
                use futures::io::AsyncReadExt as _;
                let mut stream = stream.clone();
                stream.reset().await?;
                let mut buffer = Vec::new();
                stream.read_to_end(&mut buffer).await?;
                buffer.into()
            }
        };
        let mut outgoing = http::Request::new(AxumBody::from(body));
        *outgoing.method_mut() = http::Method::from_bytes(request.method().as_str().as_bytes())
            .map_err(|_| invalid("method"))?;
        *outgoing.uri_mut() = http::Uri::try_from(target).map_err(|_| invalid("path or query"))?;
        let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let outgoing_headers = outgoing.headers_mut();
        outgoing_headers.insert(
            http::header::HOST,
            HeaderValue::from_str(authority).map_err(|_| invalid("host"))?,
        );
        for (name, value) in request.headers().iter() {
            let name = HeaderName::from_bytes(name.as_str().as_bytes())
                .map_err(|_| invalid("header name"))?;
            let value = HeaderValue::from_str(value.as_str())
                .map_err(|_| invalid(&format!("value of the header '{name}'")))?;
            outgoing_headers.insert(name, value);
        }
        let response = self.router.clone().oneshot(outgoing).await.unwrap_or_else(|e| match e {});
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| Error::with_error(ErrorKind::Io, e, "reading the response failed"))?
            .to_bytes();
        let mut out = Headers::new();
        for (name, value) in &parts.headers {
            if let Ok(value) = value.to_str() {
                out.insert(
                    headers::HeaderName::from(name.as_str().to_owned()),
                    headers::HeaderValue::from(value.to_owned()),
                );
            }
        }
        Ok(AsyncRawResponse::from_bytes(StatusCode::from(parts.status.as_u16()), out, body))
    }
}
