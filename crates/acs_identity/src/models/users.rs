//! Models and options of the identity list, an extension of acs-identity (ACS has no list
//! operation).

use super::*;
use azure_core::http::pager::PagerOptions;

wire_enum! {
    /// What the service knows about a listed identity's tokens.
    pub enum ListedUserState {
        /// `active`: never revoked, not deleted.
        Active = "active",
        /// `revoked`: its tokens were revoked at least once; tokens issued since are valid.
        Revoked = "revoked",
        /// `deleted`.
        Deleted = "deleted",
    }
}

/// One identity of the list.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ListedUser {
    /// The raw id, `8:acs:…`.
    pub id: String,
    /// The caller's own id for it, if it was created with one.
    #[serde(default)]
    pub custom_id: Option<String>,
    /// When it was created.
    #[serde(with = "azure_core::time::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When a token was last issued for it.
    #[serde(default, with = "azure_core::time::rfc3339::option")]
    pub last_token_issued_at: Option<OffsetDateTime>,
    /// When it was deleted.
    #[serde(default, with = "azure_core::time::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
    /// Active, revoked or deleted.
    pub state: ListedUserState,
    /// How many times its tokens were revoked.
    pub generation: u64,
}

list_page! {
    /// One page of [`list_users`](crate::CommunicationIdentityClient::list_users).
    pub struct ListedUserPage {
        /// The identities, newest first.
        pub value: Vec<ListedUser>,
    }
}

/// Options for [`list_users`](crate::CommunicationIdentityClient::list_users).
#[derive(Clone, Default, SafeDebug)]
pub struct CommunicationIdentityClientListUsersOptions<'a> {
    /// Paging options: the [`Context`](azure_core::http::Context) and where to continue from.
    pub method_options: PagerOptions<'a>,
    /// The most identities per page, 1 to 1000; the service default is 100.
    #[safe(true)]
    pub max_page_size: Option<u32>,
}
