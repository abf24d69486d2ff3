//! The pager of the list operations: `maxpagesize` on the first request, then the service's
//! `nextLink`s, followed on this client's endpoint.

use super::{succeeding_on, CommunicationIdentityClient};
use crate::models::ListPage;
use azure_core::{
    error::{Error, ErrorKind},
    http::{
        pager::{PagerContinuation, PagerOptions, PagerResult, PagerState},
        Method, Pager, RawResponse, Request, Response, Url,
    },
};
use serde::de::DeserializeOwned;

impl CommunicationIdentityClient {
    /// Lists `path` page by page: `GET` with `maxpagesize` (when given), then each page's
    /// `nextLink` until a page has none.
    ///
    /// Fails at once when the page size is not within 1 to 1000.
    pub(super) fn pager<P>(
        &self,
        path: &str,
        max_page_size: Option<u32>,
        options: PagerOptions<'_>,
    ) -> azure_core::Result<Pager<P>>
    where
        P: ListPage + DeserializeOwned + Send + 'static,
    {
        if let Some(size) = max_page_size.filter(|size| !(1..=1000).contains(size)) {
            return Err(Error::with_message(
                ErrorKind::Other,
                format!("max_page_size must be within 1 to 1000; got {size}"),
            ));
        }
        let mut first = self.request(Method::Get, path);
        if let Some(size) = max_page_size {
            first.url_mut().query_pairs_mut().append_pair("maxpagesize", &size.to_string());
        }
        let client = self.clone();
        let pager_options = PagerOptions {
            context: options.context.into_owned(),
            continuation: options.continuation,
        };
        Ok(Pager::new(
            move |state: PagerState, pager_options| {
                let client = client.clone();
                let mut request = first.clone();
                Box::pin(async move {
                    if let PagerState::More(next) = state {
                        let next: Url = next.try_into()?;
                        client.follow_next_link(&mut request, &next);
                    }
                    let response: RawResponse = client
                        .pipeline
                        .send(&pager_options.context, &mut request, Some(succeeding_on(&[200])))
                        .await?;
                    let page: P = response.body().json()?;
                    let response: Response<P> = response.into();
                    Ok(match page.next_link().map(Url::parse) {
                        Some(Ok(next)) => PagerResult::More {
                            response,
                            continuation: PagerContinuation::Link(next),
                        },
                        Some(Err(e)) => {
                            return Err(Error::with_message(
                                ErrorKind::DataConversion,
                                format!("the service's nextLink is not a URL: {e}"),
                            ))
                        }
                        None => PagerResult::Done { response },
                    })
                })
            },
            Some(pager_options),
        ))
    }

    /// Points `request` at the next page: the `nextLink`'s query (but this client's
    /// api-version) on this client's endpoint, so that a service behind a proxy that names
    /// another host in its links is still reached the way the client was configured.
    fn follow_next_link(&self, request: &mut Request, next: &Url) {
        let pairs: Vec<(String, String)> = next
            .query_pairs()
            .filter(|(name, _)| name != "api-version")
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        let url = request.url_mut();
        url.query_pairs_mut()
            .clear()
            .append_pair("api-version", &self.api_version)
            .extend_pairs(pairs);
    }
}
