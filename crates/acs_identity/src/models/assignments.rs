//! Models and options of the assignment operations: which Entra principals may exchange their
//! Entra tokens for Communication Services tokens.

use super::*;
use azure_core::http::pager::PagerOptions;
use std::collections::BTreeMap;

wire_enum! {
    /// Who a Teams Phone extensibility assignment is for.
    pub enum TeamsExtensionPrincipalType {
        /// `user`: a Teams user.
        User = "user",
        /// `resourceAccount`: a Teams resource account.
        ResourceAccount = "resourceAccount",
    }
}

wire_enum! {
    /// Who an Entra user access assignment is for.
    pub enum EntraPrincipalType {
        /// `user`: one Entra user, by object id.
        User = "user",
        /// `group`: every member of an Entra group (the token's `groups` claim), by group object id.
        Group = "group",
        /// `tenant`: every user of an Entra tenant, by tenant id.
        Tenant = "tenant",
    }
}

/// A Teams Phone extensibility assignment: a Teams user or resource account of a tenant that may
/// exchange its Entra token at `POST /access/teamsExtension/:exchangeAccessToken`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TeamsExtensionAssignment {
    /// The Entra object id of the user or resource account.
    pub object_id: String,
    /// The Entra tenant id.
    pub tenant_id: String,
    /// What the principal is.
    pub principal_type: TeamsExtensionPrincipalType,
    /// The client (application) ids the principal may exchange tokens of; any when absent.
    #[serde(default)]
    pub client_ids: Option<Vec<String>>,
}

/// The body of
/// [`create_or_replace_teams_extension_assignment`](crate::CommunicationIdentityClient::create_or_replace_teams_extension_assignment).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TeamsExtensionAssignmentRequest {
    /// What the principal is.
    pub principal_type: TeamsExtensionPrincipalType,
    /// The client (application) ids the principal may exchange tokens of; any when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ids: Option<Vec<String>>,
}

impl TeamsExtensionAssignmentRequest {
    /// An assignment for `principal_type`, limited to `client_ids` when given.
    pub fn new(
        principal_type: TeamsExtensionPrincipalType,
        client_ids: Option<Vec<String>>,
    ) -> Self {
        Self { principal_type, client_ids }
    }
}

/// An Entra user access assignment: a user, group or tenant whose members may exchange their
/// Entra tokens at `POST /access/entra/:exchangeAccessToken` (api-version `2025-03-02-preview`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EntraAssignment {
    /// The object id of the user or group, or the tenant id for a tenant assignment.
    pub object_id: String,
    /// The Entra tenant id.
    pub tenant_id: String,
    /// What the principal is.
    pub principal_type: EntraPrincipalType,
    /// The client (application) ids whose tokens may be exchanged.
    pub client_ids: Vec<String>,
}

/// The body of
/// [`create_or_replace_entra_assignment`](crate::CommunicationIdentityClient::create_or_replace_entra_assignment),
/// and one change of
/// [`update_entra_assignments`](crate::CommunicationIdentityClient::update_entra_assignments).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EntraAssignmentRequest {
    /// The Entra tenant id.
    pub tenant_id: String,
    /// What the principal is.
    pub principal_type: EntraPrincipalType,
    /// The client (application) ids whose tokens may be exchanged; at least one.
    pub client_ids: Vec<String>,
}

impl EntraAssignmentRequest {
    /// An assignment in `tenant_id` for `principal_type`, limited to `client_ids`.
    pub fn new(
        tenant_id: impl Into<String>,
        principal_type: EntraPrincipalType,
        client_ids: Vec<String>,
    ) -> Self {
        Self { tenant_id: tenant_id.into(), principal_type, client_ids }
    }
}

/// Changes for
/// [`update_entra_assignments`](crate::CommunicationIdentityClient::update_entra_assignments):
/// object id → the assignment to create or replace, or `None` to remove it.
///
/// Sent as a JSON merge patch, `{"<objectId>": {…} | null, …}`.
pub type EntraAssignmentChanges = BTreeMap<String, Option<EntraAssignmentRequest>>;

list_page! {
    /// One page of [`list_entra_assignments`](crate::CommunicationIdentityClient::list_entra_assignments),
    /// and the answer of
    /// [`update_entra_assignments`](crate::CommunicationIdentityClient::update_entra_assignments).
    pub struct EntraAssignmentList {
        /// The assignments.
        pub value: Vec<EntraAssignment>,
    }
}

/// Options for the Teams Phone extensibility assignment operations.
#[derive(Clone, Default, SafeDebug)]
pub struct CommunicationIdentityClientTeamsExtensionAssignmentOptions<'a> {
    /// Options for the method call, such as its [`Context`](azure_core::http::Context).
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for the Entra assignment operations that act on one assignment or a set of changes.
#[derive(Clone, Default, SafeDebug)]
pub struct CommunicationIdentityClientEntraAssignmentOptions<'a> {
    /// Options for the method call, such as its [`Context`](azure_core::http::Context).
    pub method_options: ClientMethodOptions<'a>,
}

/// Options for
/// [`list_entra_assignments`](crate::CommunicationIdentityClient::list_entra_assignments).
#[derive(Clone, Default, SafeDebug)]
pub struct CommunicationIdentityClientListEntraAssignmentsOptions<'a> {
    /// Paging options: the [`Context`](azure_core::http::Context) and where to continue from.
    pub method_options: PagerOptions<'a>,
    /// The most assignments per page, 1 to 1000; the service default is 100.
    #[safe(true)]
    pub max_page_size: Option<u32>,
}
