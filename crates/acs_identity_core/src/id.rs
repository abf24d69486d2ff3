//! The resource and its users' identifiers.
//!
//! A user's raw id is `8:acs:<resource id>_<user id>`, both parts lower-case hyphenated
//! GUIDs; `skypeid` in the access token is the same without the leading `8:`.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::entra::Cloud;

/// The immutable id of the communication resource (a GUID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResourceId(Uuid);

impl ResourceId {
    /// A fresh random resource id.
    pub fn generate() -> Self {
        ResourceId(Uuid::new_v4())
    }

    /// Wraps an existing GUID.
    pub fn from_uuid(id: Uuid) -> Self {
        ResourceId(id)
    }

    /// The GUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}

impl FromStr for ResourceId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(ResourceId)
    }
}

/// The per-resource part of an ACS user's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Uuid);

impl UserId {
    /// A fresh id; time-ordered (UUID v7) so new rows append to the index.
    pub fn generate() -> Self {
        UserId(Uuid::now_v7())
    }

    /// Wraps an existing GUID.
    pub fn from_uuid(id: Uuid) -> Self {
        UserId(id)
    }

    /// The GUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The full raw id, `8:acs:<resource>_<user>`.
    pub fn raw_id(&self, resource: ResourceId) -> String {
        format!("8:acs:{resource}_{}", self.0.as_hyphenated())
    }

    /// The `skypeid` claim, `acs:<resource>_<user>`.
    pub fn skype_id(&self, resource: ResourceId) -> String {
        format!("acs:{resource}_{}", self.0.as_hyphenated())
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}

/// An identity the token exchanges issue tokens for. Its ids are kept lower-case, as ACS
/// writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangedIdentity {
    /// A Teams user (`/teamsUser/:exchangeAccessToken`): `8:orgid:<object id>`, or
    /// `8:dod:`/`8:gcch:` for users of those clouds.
    TeamsUser {
        /// The cloud of the user's tenant.
        cloud: Cloud,
        /// The user's Entra object id.
        object_id: String,
    },
    /// A Teams Phone extensibility user or resource account:
    /// `8:acs:<resource>_<tenant id>_<object id>`.
    TeamsExtensionUser {
        /// The user's Entra tenant.
        tenant_id: String,
        /// The user's Entra object id.
        object_id: String,
    },
    /// An Entra user with user access: `8:acs:<resource>_wf_<tenant id>_<object id>`.
    EntraUser {
        /// The user's Entra tenant.
        tenant_id: String,
        /// The user's Entra object id.
        object_id: String,
    },
}

impl ExchangedIdentity {
    /// A Teams user of `cloud`.
    pub fn teams_user(cloud: Cloud, object_id: &str) -> Self {
        ExchangedIdentity::TeamsUser { cloud, object_id: object_id.to_ascii_lowercase() }
    }

    /// A Teams Phone extensibility user.
    pub fn teams_extension_user(tenant_id: &str, object_id: &str) -> Self {
        ExchangedIdentity::TeamsExtensionUser {
            tenant_id: tenant_id.to_ascii_lowercase(),
            object_id: object_id.to_ascii_lowercase(),
        }
    }

    /// An Entra user with user access.
    pub fn entra_user(tenant_id: &str, object_id: &str) -> Self {
        ExchangedIdentity::EntraUser {
            tenant_id: tenant_id.to_ascii_lowercase(),
            object_id: object_id.to_ascii_lowercase(),
        }
    }

    /// The `skypeid` claim: the raw id without `8:`.
    pub fn skype_id(&self, resource: ResourceId) -> String {
        match self {
            ExchangedIdentity::TeamsUser { cloud, object_id } => {
                format!("{}:{object_id}", cloud.teams_prefix())
            }
            ExchangedIdentity::TeamsExtensionUser { tenant_id, object_id } => {
                format!("acs:{resource}_{tenant_id}_{object_id}")
            }
            ExchangedIdentity::EntraUser { tenant_id, object_id } => {
                format!("acs:{resource}_wf_{tenant_id}_{object_id}")
            }
        }
    }

    /// The raw id.
    pub fn raw_id(&self, resource: ResourceId) -> String {
        format!("8:{}", self.skype_id(resource))
    }

    /// Whether `raw` is an id the exchanges issue tokens for (for `resource`'s own
    /// Teams extension and Entra users).
    pub fn is_exchanged(raw: &str, resource: ResourceId) -> bool {
        if [Cloud::Public, Cloud::Dod, Cloud::Gcch].iter().any(|cloud| {
            raw.strip_prefix("8:")
                .and_then(|r| r.strip_prefix(cloud.teams_prefix()))
                .and_then(|r| r.strip_prefix(':'))
                .is_some_and(|rest| !rest.is_empty())
        }) {
            return true;
        }
        raw.strip_prefix("8:acs:")
            .and_then(|rest| rest.strip_prefix(&resource.to_string()))
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|rest| rest.split('_').count() >= 2)
    }
}

/// What an identity id in a request path refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParsedIdentity {
    /// A user of this resource (it may or may not exist).
    Ours(UserId),
    /// Anything else: another resource's user, another kind of identifier, or text
    /// that is no identifier at all. ACS answers all of these with `IdentityNotOwned`.
    NotOwned,
}

/// Longest raw id accepted; longer ones are never ours.
const MAX_RAW_ID_LEN: usize = 512;

/// Classifies a raw id (already percent-decoded) against `resource`.
pub fn parse_identity(raw: &str, resource: ResourceId) -> ParsedIdentity {
    if raw.len() > MAX_RAW_ID_LEN {
        return ParsedIdentity::NotOwned;
    }
    let Some(rest) = raw.strip_prefix("8:acs:") else {
        return ParsedIdentity::NotOwned;
    };
    let Some((res, user)) = rest.split_once('_') else {
        return ParsedIdentity::NotOwned;
    };
    // Canonical text only: a GUID that parses but is written differently is another id.
    if res.len() != 36 || user.len() != 36 {
        return ParsedIdentity::NotOwned;
    }
    match (Uuid::parse_str(res), Uuid::parse_str(user)) {
        (Ok(r), Ok(u)) if r == resource.as_uuid() && res == r.as_hyphenated().to_string() => {
            if user.bytes().any(|b| b.is_ascii_uppercase()) {
                return ParsedIdentity::NotOwned;
            }
            ParsedIdentity::Ours(UserId(u))
        }
        _ => ParsedIdentity::NotOwned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn resource() -> ResourceId {
        "2dee53b4-368b-45b4-ab52-8493fb117652".parse().unwrap()
    }

    #[test]
    fn exchanged_identities_have_acs_shapes_and_are_recognised() {
        let (tid, oid) =
            ("C70D068C-2F32-484D-9455-73070CD5AADD", "B27B64B9-39D2-44A3-869D-67700B74E805");
        let r = resource();
        let cases = [
            (
                ExchangedIdentity::teams_user(Cloud::Public, oid),
                format!("8:orgid:{}", oid.to_ascii_lowercase()),
            ),
            (
                ExchangedIdentity::teams_user(Cloud::Dod, oid),
                format!("8:dod:{}", oid.to_ascii_lowercase()),
            ),
            (
                ExchangedIdentity::teams_user(Cloud::Gcch, oid),
                format!("8:gcch:{}", oid.to_ascii_lowercase()),
            ),
            (
                ExchangedIdentity::teams_extension_user(tid, oid),
                format!("8:acs:{r}_{}_{}", tid.to_ascii_lowercase(), oid.to_ascii_lowercase()),
            ),
            (
                ExchangedIdentity::entra_user(tid, oid),
                format!("8:acs:{r}_wf_{}_{}", tid.to_ascii_lowercase(), oid.to_ascii_lowercase()),
            ),
        ];
        for (identity, raw) in cases {
            assert_eq!(identity.raw_id(r), raw);
            assert_eq!(identity.skype_id(r), raw[2..]);
            assert!(ExchangedIdentity::is_exchanged(&raw, r), "{raw}");
            assert_eq!(parse_identity(&raw, r), ParsedIdentity::NotOwned, "{raw}");
            let other = ResourceId::generate();
            if raw.starts_with("8:acs:") {
                assert!(!ExchangedIdentity::is_exchanged(&identity.raw_id(other), r), "{raw}");
            }
        }
        for not in ["8:orgid:", "8:acs:x", "orgid:abc", "8:spool:abc", ""] {
            assert!(!ExchangedIdentity::is_exchanged(not, r), "{not}");
        }
    }

    #[test]
    fn raw_id_and_skype_id_have_acs_shape() {
        let user = UserId::from_uuid("00000005-14a2-493b-8a72-5a3a0d000081".parse().unwrap());
        assert_eq!(
            user.raw_id(resource()),
            "8:acs:2dee53b4-368b-45b4-ab52-8493fb117652_00000005-14a2-493b-8a72-5a3a0d000081"
        );
        assert_eq!(
            user.skype_id(resource()),
            "acs:2dee53b4-368b-45b4-ab52-8493fb117652_00000005-14a2-493b-8a72-5a3a0d000081"
        );
    }

    #[test]
    fn own_ids_parse_and_others_do_not() {
        let r = resource();
        let user = UserId::generate();
        assert_eq!(parse_identity(&user.raw_id(r), r), ParsedIdentity::Ours(user));
        let other = ResourceId::generate();
        for raw in [
            user.raw_id(other),
            user.raw_id(r).replace("8:acs:", "8:spool:"),
            user.raw_id(r).to_uppercase(),
            format!("{}_extra", user.raw_id(r)),
            "8:acs:".to_owned(),
            "8:acs:1234".to_owned(),
            "4:+14255550123".to_owned(),
            "8:orgid:00000000-0000-0000-0000-000000000000".to_owned(),
            String::new(),
            "x".repeat(10_000),
            format!("8:acs:{r}_{}_{}", user, user),
        ] {
            assert_eq!(parse_identity(&raw, r), ParsedIdentity::NotOwned, "{raw}");
        }
    }

    #[test]
    fn generated_user_ids_are_time_ordered_and_unique() {
        let a = UserId::generate();
        let b = UserId::generate();
        assert_ne!(a, b);
        assert!(a < b);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = parse_identity(&s, resource());
        }

        #[test]
        fn every_generated_id_round_trips(bytes in any::<[u8; 16]>()) {
            let user = UserId::from_uuid(Uuid::from_bytes(bytes));
            prop_assert_eq!(parse_identity(&user.raw_id(resource()), resource()), ParsedIdentity::Ours(user));
        }
    }
}
