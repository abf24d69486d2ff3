//! Assignment operations: who may exchange an Entra token for a Communication Services token.
//!
//! - Teams Phone extensibility, `/access/teamsExtension/tenants/{tenantId}/assignments/{objectId}`
//!   (api-version `2025-03-02-preview`, `2025-06-30` and later);
//! - Entra user access, `/access/entra/assignments` (api-version `2025-03-02-preview`).
//!
//! The exchanges themselves are made by the end user's application with its own Entra token; see
//! [`acs_common::entra`].

use super::{set_json, CommunicationIdentityClient, Feature, PathPart};
use crate::models::{
    CommunicationIdentityClientEntraAssignmentOptions,
    CommunicationIdentityClientListEntraAssignmentsOptions,
    CommunicationIdentityClientTeamsExtensionAssignmentOptions, EntraAssignment,
    EntraAssignmentChanges, EntraAssignmentList, EntraAssignmentRequest, TeamsExtensionAssignment,
    TeamsExtensionAssignmentRequest,
};
use azure_core::{
    error::{Error, ErrorKind},
    http::{headers::CONTENT_TYPE, Method, NoFormat, Pager, Response},
};

const ACCESS: PathPart<'static> = PathPart::Literal("access");
const TEAMS_EXTENSION: PathPart<'static> = PathPart::Literal("teamsExtension");
const ENTRA: PathPart<'static> = PathPart::Literal("entra");
const ASSIGNMENTS: PathPart<'static> = PathPart::Literal("assignments");

impl CommunicationIdentityClient {
    /// Gets the Teams Phone extensibility assignment of a user or resource account of a tenant.
    ///
    /// `GET /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}`; the service answers
    /// `200`.
    ///
    /// # Errors
    ///
    /// Fails without sending a request when an id is empty or the client uses an api-version
    /// before `2025-03-02-preview`. A missing assignment is a `404` [`ErrorKind::HttpResponse`]
    /// error.
    #[tracing::instrument(name = "CommunicationIdentityClient::get_teams_extension_assignment", skip_all, fields(api_version = %self.api_version))]
    pub async fn get_teams_extension_assignment(
        &self,
        tenant_id: &str,
        object_id: &str,
        options: Option<CommunicationIdentityClientTeamsExtensionAssignmentOptions<'_>>,
    ) -> azure_core::Result<Response<TeamsExtensionAssignment>> {
        let options = options.unwrap_or_default();
        let path = self.teams_extension_path(tenant_id, object_id)?;
        let mut request = self.request(Method::Get, &path);
        self.send(&options.method_options.context, &mut request, &[200]).await
    }

    /// Creates or replaces the Teams Phone extensibility assignment of a user or resource account
    /// of a tenant.
    ///
    /// `PUT /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}`; the service answers
    /// `201` when it created the assignment and `200` when it replaced one.
    ///
    /// # Errors
    ///
    /// Fails without sending a request when an id is empty or the client uses an api-version
    /// before `2025-03-02-preview`. Invalid ids are `400 ValidationError`
    /// [`ErrorKind::HttpResponse`] errors.
    #[tracing::instrument(name = "CommunicationIdentityClient::create_or_replace_teams_extension_assignment", skip_all, fields(api_version = %self.api_version))]
    pub async fn create_or_replace_teams_extension_assignment(
        &self,
        tenant_id: &str,
        object_id: &str,
        assignment: &TeamsExtensionAssignmentRequest,
        options: Option<CommunicationIdentityClientTeamsExtensionAssignmentOptions<'_>>,
    ) -> azure_core::Result<Response<TeamsExtensionAssignment>> {
        let options = options.unwrap_or_default();
        let path = self.teams_extension_path(tenant_id, object_id)?;
        let mut request = self.request(Method::Put, &path);
        set_json(&mut request, assignment)?;
        self.send(&options.method_options.context, &mut request, &[200, 201]).await
    }

    /// Deletes the Teams Phone extensibility assignment of a user or resource account of a tenant;
    /// its later exchanges fail with `403`.
    ///
    /// `DELETE /access/teamsExtension/tenants/{tenantId}/assignments/{objectId}`; the service
    /// answers `204`, also when there was no such assignment.
    ///
    /// # Errors
    ///
    /// Fails without sending a request when an id is empty or the client uses an api-version
    /// before `2025-03-02-preview`.
    #[tracing::instrument(name = "CommunicationIdentityClient::delete_teams_extension_assignment", skip_all, fields(api_version = %self.api_version))]
    pub async fn delete_teams_extension_assignment(
        &self,
        tenant_id: &str,
        object_id: &str,
        options: Option<CommunicationIdentityClientTeamsExtensionAssignmentOptions<'_>>,
    ) -> azure_core::Result<Response<(), NoFormat>> {
        let options = options.unwrap_or_default();
        let path = self.teams_extension_path(tenant_id, object_id)?;
        let mut request = self.request(Method::Delete, &path);
        self.send(&options.method_options.context, &mut request, &[204]).await
    }

    /// Lists the Entra user access assignments, ordered by object id, one page per request.
    ///
    /// `GET /access/entra/assignments` (api-version `2025-03-02-preview`), following `nextLink`.
    ///
    /// ```no_run
    /// # async fn example(client: acs_identity::CommunicationIdentityClient) -> azure_core::Result<()> {
    /// use futures::TryStreamExt as _;
    ///
    /// let mut assignments = client.list_entra_assignments(None)?;
    /// while let Some(assignment) = assignments.try_next().await? {
    ///     println!("{} ({})", assignment.object_id, assignment.principal_type);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// Fails at once when the client uses a known api-version other than `2025-03-02-preview` or
    /// the page size is not within 1 to 1000; service errors come from the pager.
    pub fn list_entra_assignments(
        &self,
        options: Option<CommunicationIdentityClientListEntraAssignmentsOptions<'_>>,
    ) -> azure_core::Result<Pager<EntraAssignmentList>> {
        let options = options.unwrap_or_default();
        self.require(Feature::EntraAccess)?;
        self.pager(
            &self.path(&[ACCESS, ENTRA, ASSIGNMENTS]),
            options.max_page_size,
            options.method_options,
        )
    }

    /// Gets the Entra user access assignment of a user, group or tenant.
    ///
    /// `GET /access/entra/assignments/{objectId}` (api-version `2025-03-02-preview`); the service
    /// answers `200`.
    ///
    /// # Errors
    ///
    /// Fails without sending a request when the id is empty or the client uses a known api-version
    /// other than `2025-03-02-preview`. A missing assignment is a `404`
    /// [`ErrorKind::HttpResponse`] error.
    #[tracing::instrument(name = "CommunicationIdentityClient::get_entra_assignment", skip_all, fields(api_version = %self.api_version))]
    pub async fn get_entra_assignment(
        &self,
        object_id: &str,
        options: Option<CommunicationIdentityClientEntraAssignmentOptions<'_>>,
    ) -> azure_core::Result<Response<EntraAssignment>> {
        let options = options.unwrap_or_default();
        let path = self.entra_path(object_id)?;
        let mut request = self.request(Method::Get, &path);
        self.send(&options.method_options.context, &mut request, &[200]).await
    }

    /// Creates or replaces the Entra user access assignment of a user, group or tenant.
    ///
    /// `PUT /access/entra/assignments/{objectId}` (api-version `2025-03-02-preview`); the service
    /// answers `201` when it created the assignment and `200` when it replaced one.
    ///
    /// # Errors
    ///
    /// Fails without sending a request when the id is empty or the client uses a known api-version
    /// other than `2025-03-02-preview`. Invalid ids or an empty list of client ids are
    /// `400 ValidationError` [`ErrorKind::HttpResponse`] errors.
    #[tracing::instrument(name = "CommunicationIdentityClient::create_or_replace_entra_assignment", skip_all, fields(api_version = %self.api_version))]
    pub async fn create_or_replace_entra_assignment(
        &self,
        object_id: &str,
        assignment: &EntraAssignmentRequest,
        options: Option<CommunicationIdentityClientEntraAssignmentOptions<'_>>,
    ) -> azure_core::Result<Response<EntraAssignment>> {
        let options = options.unwrap_or_default();
        let path = self.entra_path(object_id)?;
        let mut request = self.request(Method::Put, &path);
        set_json(&mut request, assignment)?;
        self.send(&options.method_options.context, &mut request, &[200, 201]).await
    }

    /// Deletes the Entra user access assignment of a user, group or tenant.
    ///
    /// `DELETE /access/entra/assignments/{objectId}` (api-version `2025-03-02-preview`); the
    /// service answers `204`, also when there was no such assignment.
    ///
    /// # Errors
    ///
    /// Fails without sending a request when the id is empty or the client uses a known api-version
    /// other than `2025-03-02-preview`.
    #[tracing::instrument(name = "CommunicationIdentityClient::delete_entra_assignment", skip_all, fields(api_version = %self.api_version))]
    pub async fn delete_entra_assignment(
        &self,
        object_id: &str,
        options: Option<CommunicationIdentityClientEntraAssignmentOptions<'_>>,
    ) -> azure_core::Result<Response<(), NoFormat>> {
        let options = options.unwrap_or_default();
        let path = self.entra_path(object_id)?;
        let mut request = self.request(Method::Delete, &path);
        self.send(&options.method_options.context, &mut request, &[204]).await
    }

    /// Creates, replaces and removes several Entra user access assignments in one request; the
    /// service applies all changes or none.
    ///
    /// `PATCH /access/entra/assignments` with a JSON merge patch (api-version
    /// `2025-03-02-preview`). The service answers `200` with the created or replaced assignments,
    /// or `204` when the changes only removed assignments; the model of a `204` is an empty list.
    ///
    /// # Errors
    ///
    /// Fails without sending a request when `changes` is empty or the client uses a known
    /// api-version other than `2025-03-02-preview`. Invalid changes are `400 ValidationError`
    /// [`ErrorKind::HttpResponse`] errors, and then nothing changed.
    #[tracing::instrument(name = "CommunicationIdentityClient::update_entra_assignments", skip_all, fields(api_version = %self.api_version))]
    pub async fn update_entra_assignments(
        &self,
        changes: &EntraAssignmentChanges,
        options: Option<CommunicationIdentityClientEntraAssignmentOptions<'_>>,
    ) -> azure_core::Result<Vec<EntraAssignment>> {
        let options = options.unwrap_or_default();
        self.require(Feature::EntraAccess)?;
        if changes.is_empty() {
            return Err(Error::with_message(ErrorKind::Other, "changes must not be empty"));
        }
        let mut request = self.request(Method::Patch, &self.path(&[ACCESS, ENTRA, ASSIGNMENTS]));
        set_json(&mut request, changes)?;
        request.insert_header(CONTENT_TYPE, "application/merge-patch+json");
        let response: Response<EntraAssignmentList> =
            self.send(&options.method_options.context, &mut request, &[200, 204]).await?;
        if response.status() == 204 {
            return Ok(Vec::new());
        }
        Ok(response.into_model()?.value)
    }

    fn teams_extension_path(&self, tenant_id: &str, object_id: &str) -> azure_core::Result<String> {
        self.require(Feature::TeamsExtension)?;
        Ok(self.path(&[
            ACCESS,
            TEAMS_EXTENSION,
            PathPart::Literal("tenants"),
            PathPart::Parameter(non_empty(tenant_id, "tenant id")?),
            ASSIGNMENTS,
            PathPart::Parameter(non_empty(object_id, "object id")?),
        ]))
    }

    fn entra_path(&self, object_id: &str) -> azure_core::Result<String> {
        self.require(Feature::EntraAccess)?;
        Ok(self.path(&[
            ACCESS,
            ENTRA,
            ASSIGNMENTS,
            PathPart::Parameter(non_empty(object_id, "object id")?),
        ]))
    }
}

fn non_empty<'a>(value: &'a str, what: &str) -> azure_core::Result<&'a str> {
    if value.is_empty() {
        return Err(Error::with_message(ErrorKind::Other, format!("the {what} must not be empty")));
    }
    Ok(value)
}
