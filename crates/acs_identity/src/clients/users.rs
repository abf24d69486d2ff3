//! The identity list, `GET /identities`: an extension of acs-identity, which ACS does not
//! serve (Azure answers it with an error).

use super::{succeeding_on, CommunicationIdentityClient, IDENTITIES};
use crate::models::{CommunicationIdentityClientListUsersOptions, ListedUserPage};
use azure_core::{
    error::{Error, ErrorKind},
    http::{
        pager::{PagerContinuation, PagerOptions, PagerResult, PagerState},
        Method, Pager, RawResponse, Response, Url,
    },
};

impl CommunicationIdentityClient {
    /// Lists the resource's identities, newest first, deleted ones included.
    ///
    /// `GET /identities` with `maxpagesize` and the service's `nextLink`s: an extension of
    /// acs-identity (`/openapi/extensions.json`), not an ACS operation.
    ///
    /// # Errors
    ///
    /// Fails at once when the page size is not within 1 to 1000; service errors come from the
    /// pager.
    pub fn list_users(
        &self,
        options: Option<CommunicationIdentityClientListUsersOptions<'_>>,
    ) -> azure_core::Result<Pager<ListedUserPage>> {
        let options = options.unwrap_or_default();
        if let Some(size) = options.max_page_size.filter(|size| !(1..=1000).contains(size)) {
            return Err(Error::with_message(
                ErrorKind::Other,
                format!("max_page_size must be within 1 to 1000; got {size}"),
            ));
        }
        let mut first = self.request(Method::Get, &self.path(&[IDENTITIES]));
        if let Some(size) = options.max_page_size {
            first.url_mut().query_pairs_mut().append_pair("maxpagesize", &size.to_string());
        }
        let client = self.clone();
        let pager_options = PagerOptions {
            context: options.method_options.context.into_owned(),
            continuation: options.method_options.continuation,
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
                    let page: ListedUserPage = response.body().json()?;
                    let response: Response<ListedUserPage> = response.into();
                    Ok(match page.next_link.as_deref().map(Url::parse) {
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
}
