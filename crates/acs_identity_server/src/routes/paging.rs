//! What the list operations share: `maxpagesize`, the query parameters, and a page of
//! `value` with the `nextLink` on the listener the request came in on.

use axum::http::{HeaderMap, Uri};
use axum::Extension;
use serde::Serialize;

use crate::error::ApiError;
use crate::transport::Transport;

/// Items per page when `maxpagesize` is not given, and at most.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// A page of a list: `{"value": […], "nextLink": "…"}`, `nextLink` only when there is more.
#[derive(Serialize)]
pub(super) struct Page<T> {
    pub(super) value: Vec<T>,
    #[serde(rename = "nextLink", skip_serializing_if = "Option::is_none")]
    pub(super) next_link: Option<String>,
}

/// The value of the query parameter `name` (case-insensitive), as sent.
fn query_param<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

/// `maxpagesize`: 1 to 1000, 100 when not given; anything else is a 400.
fn page_size(uri: &Uri) -> Result<u32, ApiError> {
    match query_param(uri, "maxpagesize") {
        None => Ok(DEFAULT_PAGE),
        Some(v) => v.parse::<u32>().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(|| {
            ApiError::validation(
                format!("maxpagesize must be within [1, {MAX_PAGE}]."),
                "maxpagesize",
            )
        }),
    }
}

/// A list request's `maxpagesize` ([`page_size`]) and its `continuationToken`, if any, read
/// by `token`.
pub(super) fn page_request<T>(
    uri: &Uri,
    token: impl FnOnce(&str) -> Result<T, ApiError>,
) -> Result<(u32, Option<T>), ApiError> {
    let size = page_size(uri)?;
    let continuation = query_param(uri, "continuationToken").map(token).transpose()?;
    Ok((size, continuation))
}

/// The `nextLink` of a page read with one item more than `size`: `None` when there is no such
/// item (the last page); otherwise the item is dropped and the link is `link` of the last item
/// kept.
pub(super) fn next_link<T>(
    items: &mut Vec<T>,
    size: u32,
    link: impl FnOnce(&T) -> String,
) -> Option<String> {
    if items.len() <= size as usize {
        return None;
    }
    items.truncate(size as usize);
    items.last().map(link)
}

/// `scheme://host` for a `nextLink`: the scheme of the listener the request came in on and
/// the request's `Host`.
pub(super) fn link_origin(headers: &HeaderMap, transport: Option<Extension<Transport>>) -> String {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let scheme = transport.map_or(Transport::Https, |t| t.0).scheme();
    format!("{scheme}://{host}")
}
