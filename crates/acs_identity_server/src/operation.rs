//! The operation table: every operation of the API, declared once.
//!
//! The router ([`crate::app`]), the `api-version` check and the `api-supported-versions`
//! header, throttling and the audit log all read [`Operation::spec`]. Adding an operation
//! means adding a line to the table below and its handler to `routes::endpoint`, whose
//! `match` does not compile without it; `tests/it/operations.rs` sends a request to every
//! operation in [`Operation::ALL`].

use acs_identity_core::ApiVersion;
use axum::http::Method;

use crate::throttle::ThrottleClass;

/// Who authenticates a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// The resource: an HMAC signature with an access key, or an Entra token for the
    /// Identity API (`auth::authenticate`).
    Resource,
    /// The end user's own Entra token, verified by the handler (the token exchanges under
    /// `/access`).
    EndUser,
}

/// What an operation does to the resource's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Changes nothing: not audited.
    Read,
    /// Changes state or issues a token: one audit line per request, under this name.
    Write(&'static str),
}

/// Everything the service knows about an operation besides its handler.
#[derive(Debug)]
pub struct OperationSpec {
    /// A stable `snake_case` name, for logs and metrics.
    pub name: &'static str,
    /// The HTTP method.
    pub method: Method,
    /// The route, in axum's syntax (`{id}` for a path parameter).
    pub path: &'static str,
    /// The api-versions the operation exists in; `None`: no `api-version` is read (an
    /// extension of this service, not an ACS operation).
    pub versions: Option<fn(ApiVersion) -> bool>,
    /// The limit it counts against, if any (see [`crate::throttle`]).
    pub throttle: Option<ThrottleClass>,
    /// Whether it changes state, and its name in the audit log.
    pub effect: Effect,
    /// Who authenticates it.
    pub auth: Auth,
}

impl OperationSpec {
    /// The audit log's name for it; `None` for reads.
    pub fn audit_name(&self) -> Option<&'static str> {
        match self.effect {
            Effect::Read => None,
            Effect::Write(name) => Some(name),
        }
    }

    /// Whether it exists in `version`.
    pub fn serves(&self, version: ApiVersion) -> bool {
        self.versions.is_none_or(|served| served(version))
    }
}

/// Declares [`Operation`], [`Operation::ALL`] and [`Operation::spec`] from one table.
macro_rules! operations {
    ($($(#[$doc:meta])* $variant:ident => $spec:expr,)+) => {
        /// An operation of the API.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Operation {
            $($(#[$doc])* $variant,)+
        }

        impl Operation {
            /// Every operation, in the order of the table.
            pub const ALL: [Operation; [$(stringify!($variant)),+].len()] =
                [$(Operation::$variant,)+];

            /// What the service knows about it.
            pub fn spec(self) -> &'static OperationSpec {
                match self {
                    $(Operation::$variant => {
                        static SPEC: OperationSpec = $spec;
                        &SPEC
                    })+
                }
            }
        }
    };
}

/// One row of the table.
const fn op(
    name: &'static str,
    method: Method,
    path: &'static str,
    versions: Option<fn(ApiVersion) -> bool>,
    throttle: Option<ThrottleClass>,
    effect: Effect,
    auth: Auth,
) -> OperationSpec {
    OperationSpec { name, method, path, versions, throttle, effect, auth }
}

use Auth::{EndUser, Resource};
use Effect::{Read, Write};

const ANY: Option<fn(ApiVersion) -> bool> = Some(ApiVersion::any);
const CUSTOM_ID: Option<fn(ApiVersion) -> bool> = Some(ApiVersion::has_custom_id);
const TEAMS_USER: Option<fn(ApiVersion) -> bool> = Some(ApiVersion::has_teams_user_exchange);
const TEAMS_EXTENSION: Option<fn(ApiVersion) -> bool> = Some(ApiVersion::has_teams_extension);
const ENTRA: Option<fn(ApiVersion) -> bool> = Some(ApiVersion::has_entra);

const TEAMS_ASSIGNMENT: &str = "/access/teamsExtension/tenants/{tenant_id}/assignments/{object_id}";
const ENTRA_ASSIGNMENT: &str = "/access/entra/assignments/{object_id}";

operations! {
    /// `POST /identities`: a new user, with a token when scopes are given (then it counts
    /// against `create_user_and_token` and is audited as `identity.create_with_token`).
    CreateIdentity => op("create_identity", Method::POST, "/identities", ANY,
        Some(ThrottleClass::CreateIdentity), Write("identity.create"), Resource),
    /// `GET /identities/{id}` (2025-03-02-preview).
    GetIdentity => op("get_identity", Method::GET, "/identities/{id}", CUSTOM_ID,
        None, Read, Resource),
    /// `DELETE /identities/{id}`.
    DeleteIdentity => op("delete_identity", Method::DELETE, "/identities/{id}", ANY,
        Some(ThrottleClass::DeleteIdentity), Write("identity.delete"), Resource),
    /// `POST /identities/{id}/:issueAccessToken`.
    IssueAccessToken => op("issue_access_token", Method::POST,
        "/identities/{id}/:issueAccessToken", ANY,
        Some(ThrottleClass::IssueAccessToken), Write("token.issue"), Resource),
    /// `POST /identities/{id}/:revokeAccessTokens`.
    RevokeAccessTokens => op("revoke_access_tokens", Method::POST,
        "/identities/{id}/:revokeAccessTokens", ANY,
        Some(ThrottleClass::RevokeAccessTokens), Write("token.revoke"), Resource),
    /// `POST /teamsUser/:exchangeAccessToken`: a Teams user's Entra token for an ACS token.
    ExchangeTeamsUserToken => op("exchange_teams_user_token", Method::POST,
        "/teamsUser/:exchangeAccessToken", TEAMS_USER,
        Some(ThrottleClass::ExchangeTokens), Write("teams_user.exchange"), Resource),
    /// `POST /accessTokens/:validate`: this service's validation endpoint.
    ValidateAccessToken => op("validate_access_token", Method::POST,
        "/accessTokens/:validate", None, None, Read, Resource),
    /// `POST /access/teamsExtension/:exchangeAccessToken`.
    ExchangeTeamsExtensionToken => op("exchange_teams_extension_token", Method::POST,
        "/access/teamsExtension/:exchangeAccessToken", TEAMS_EXTENSION,
        Some(ThrottleClass::ExchangeTokens), Write("teams_extension.exchange"), EndUser),
    /// `GET` a Teams Phone extensibility assignment.
    GetTeamsExtensionAssignment => op("get_teams_extension_assignment", Method::GET,
        TEAMS_ASSIGNMENT, TEAMS_EXTENSION, None, Read, Resource),
    /// `PUT` a Teams Phone extensibility assignment.
    PutTeamsExtensionAssignment => op("put_teams_extension_assignment", Method::PUT,
        TEAMS_ASSIGNMENT, TEAMS_EXTENSION, None, Write("teams_extension.assignment.put"),
        Resource),
    /// `DELETE` a Teams Phone extensibility assignment.
    DeleteTeamsExtensionAssignment => op("delete_teams_extension_assignment", Method::DELETE,
        TEAMS_ASSIGNMENT, TEAMS_EXTENSION, None, Write("teams_extension.assignment.delete"),
        Resource),
    /// `POST /access/entra/:exchangeAccessToken`.
    ExchangeEntraToken => op("exchange_entra_token", Method::POST,
        "/access/entra/:exchangeAccessToken", ENTRA,
        Some(ThrottleClass::ExchangeTokens), Write("entra.exchange"), EndUser),
    /// `GET /access/entra/assignments`, paged.
    ListEntraAssignments => op("list_entra_assignments", Method::GET,
        "/access/entra/assignments", ENTRA, None, Read, Resource),
    /// `PATCH /access/entra/assignments`: a JSON merge patch of several assignments.
    PatchEntraAssignments => op("patch_entra_assignments", Method::PATCH,
        "/access/entra/assignments", ENTRA, None, Write("entra.assignments.patch"), Resource),
    /// `GET` an Entra user access assignment.
    GetEntraAssignment => op("get_entra_assignment", Method::GET, ENTRA_ASSIGNMENT, ENTRA,
        None, Read, Resource),
    /// `PUT` an Entra user access assignment.
    PutEntraAssignment => op("put_entra_assignment", Method::PUT, ENTRA_ASSIGNMENT, ENTRA,
        None, Write("entra.assignment.put"), Resource),
    /// `DELETE` an Entra user access assignment.
    DeleteEntraAssignment => op("delete_entra_assignment", Method::DELETE, ENTRA_ASSIGNMENT,
        ENTRA, None, Write("entra.assignment.delete"), Resource),
    /// `GET /identities`: this service's list of identities, newest first, paged (an
    /// extension: ACS has no list; `openapi/extensions.json`).
    ListIdentities => op("list_identities", Method::GET, "/identities", None, None, Read,
        Resource),
    /// `GET /resource`: the resource's id, data location and signing keys (extension).
    GetResource => op("get_resource", Method::GET, "/resource", None, None, Read, Resource),
    /// `GET /activity`: this node's request counters of the last minutes (extension).
    GetActivity => op("get_activity", Method::GET, "/activity", None, None, Read, Resource),
}

impl Operation {
    /// The operation a request to the route `path` (as matched, in axum's syntax) with
    /// `method` performs.
    pub fn find(method: &Method, path: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| {
            let spec = op.spec();
            spec.method == method && spec.path == path
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_and_routes_are_unique() {
        let names: HashSet<_> = Operation::ALL.iter().map(|op| op.spec().name).collect();
        assert_eq!(names.len(), Operation::ALL.len());
        let routes: HashSet<_> =
            Operation::ALL.iter().map(|op| (op.spec().method.clone(), op.spec().path)).collect();
        assert_eq!(routes.len(), Operation::ALL.len());
        for op in Operation::ALL {
            assert_eq!(Operation::find(&op.spec().method, op.spec().path), Some(op));
        }
    }

    #[test]
    fn a_path_has_one_kind_of_authentication() {
        for a in Operation::ALL {
            for b in Operation::ALL {
                if a.spec().path == b.spec().path {
                    assert_eq!(a.spec().auth, b.spec().auth, "{a:?} and {b:?}");
                }
            }
        }
    }

    #[test]
    fn only_writes_count_against_limits_and_every_write_is_audited() {
        for op in Operation::ALL {
            let spec = op.spec();
            if spec.throttle.is_some() {
                assert!(spec.audit_name().is_some(), "{op:?} is throttled but not audited");
            }
            if spec.method != Method::GET && spec.path != "/accessTokens/:validate" {
                assert!(spec.audit_name().is_some(), "{op:?} changes state unaudited");
            }
        }
        assert_eq!(Operation::find(&Method::GET, "/identities/{id}"), Some(Operation::GetIdentity));
        assert_eq!(Operation::GetIdentity.spec().audit_name(), None);
        assert_eq!(Operation::DeleteIdentity.spec().audit_name(), Some("identity.delete"));
    }

    #[test]
    fn version_gates_follow_api_version() {
        assert!(Operation::GetIdentity.spec().serves(ApiVersion::V2025_03_02Preview));
        assert!(!Operation::GetIdentity.spec().serves(ApiVersion::V2025_06_30));
        assert!(Operation::ValidateAccessToken.spec().serves(ApiVersion::V2021_03_07));
        assert!(!Operation::ExchangeTeamsUserToken.spec().serves(ApiVersion::V2021_03_07));
        assert!(Operation::PutTeamsExtensionAssignment.spec().serves(ApiVersion::LATEST));
        assert!(!Operation::PutEntraAssignment.spec().serves(ApiVersion::LATEST));
    }
}
