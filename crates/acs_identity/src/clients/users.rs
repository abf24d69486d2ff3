//! The identity list, `GET /identities`: an extension of acs-identity, which ACS does not
//! serve (Azure answers it with an error).

use super::{CommunicationIdentityClient, IDENTITIES};
use crate::models::{CommunicationIdentityClientListUsersOptions, ListedUserPage};
use azure_core::http::Pager;

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
        self.pager(&self.path(&[IDENTITIES]), options.max_page_size, options.method_options)
    }
}
