//! Communication identifiers and their raw ids.
//!
//! Every participant Azure Communication Services knows about has a *raw id*, a single string such
//! as `8:acs:<resource>_<user>` or `4:+14255550123`. [`CommunicationIdentifier::from_raw_id`] turns a
//! raw id back into a typed identifier, and [`CommunicationIdentifier::raw_id`] does the reverse.
//! The rules follow the official communication-common libraries:
//!
//! | raw id | identifier |
//! |---|---|
//! | `4:<number>` (with or without `+`, or `4:anonymous`) | [`PhoneNumberIdentifier`] |
//! | `8:acs:`, `8:dod-acs:`, `8:gcch-acs:` + `<resource>_<tenant>_<user>` (exactly three `_` parts) | [`TeamsExtensionUserIdentifier`] |
//! | `8:acs:…`, `8:dod-acs:…`, `8:gcch-acs:…`, `8:spool:…` otherwise | [`CommunicationUserIdentifier`] |
//! | `8:orgid:`, `8:dod:`, `8:gcch:`, `8:teamsvisitor:` (anonymous) | [`MicrosoftTeamsUserIdentifier`] |
//! | `28:orgid:`, `28:dod:`, `28:gcch:` | [`MicrosoftTeamsAppIdentifier`] |
//! | anything else, including ids with more or fewer than two `:` | [`UnknownIdentifier`] |
//!
//! Converting a raw id to an identifier and back always yields the same raw id, and identifiers
//! compare equal exactly when their raw ids are equal.
//!
//! ```
//! use acs_common::identifier::{CommunicationCloudEnvironment, CommunicationIdentifier};
//!
//! let id = CommunicationIdentifier::from_raw_id("8:gcch:00000000-0000-0000-0000-000000000001");
//! match &id {
//!     CommunicationIdentifier::MicrosoftTeamsUser(user) => {
//!         assert_eq!(user.cloud, CommunicationCloudEnvironment::Gcch);
//!         assert!(!user.is_anonymous);
//!     }
//!     other => panic!("unexpected kind {}", other.kind()),
//! }
//! assert_eq!(id.raw_id(), "8:gcch:00000000-0000-0000-0000-000000000001");
//! ```

use azure_core::error::{Error, ErrorKind};
use std::{
    borrow::Cow,
    fmt,
    hash::{Hash, Hasher},
    str::FromStr,
};

const PHONE: &str = "4:";
const TEAMS_APP_PUBLIC: &str = "28:orgid:";
const TEAMS_APP_DOD: &str = "28:dod:";
const TEAMS_APP_GCCH: &str = "28:gcch:";
const TEAMS_USER_ANONYMOUS: &str = "8:teamsvisitor:";
const TEAMS_USER_PUBLIC: &str = "8:orgid:";
const TEAMS_USER_DOD: &str = "8:dod:";
const TEAMS_USER_GCCH: &str = "8:gcch:";
const ACS_USER: &str = "8:acs:";
const ACS_USER_DOD: &str = "8:dod-acs:";
const ACS_USER_GCCH: &str = "8:gcch-acs:";
const SPOOL_USER: &str = "8:spool:";
const ANONYMOUS_PHONE: &str = "anonymous";

/// The cloud an identifier belongs to.
///
/// A missing cloud means [`Public`](CommunicationCloudEnvironment::Public).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CommunicationCloudEnvironment {
    /// The public Azure cloud.
    #[default]
    Public,
    /// The US Department of Defense cloud.
    Dod,
    /// The US Government Community Cloud High.
    Gcch,
}

impl CommunicationCloudEnvironment {
    /// The name used in JSON models of other Communication Services APIs: `public`, `dod` or `gcch`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Dod => "dod",
            Self::Gcch => "gcch",
        }
    }
}

impl fmt::Display for CommunicationCloudEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommunicationCloudEnvironment {
    type Err = Error;

    /// Parses `public`, `dod` or `gcch` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "public" => Ok(Self::Public),
            "dod" => Ok(Self::Dod),
            "gcch" => Ok(Self::Gcch),
            _ => Err(Error::with_message(
                ErrorKind::DataConversion,
                format!(
                    "unknown communication cloud environment '{s}'; expected public, dod or gcch"
                ),
            )),
        }
    }
}

/// Implements equality, hashing and `Display` through the raw id.
macro_rules! raw_id_semantics {
    ($($ty:ty),* $(,)?) => {$(
        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.raw_id() == other.raw_id()
            }
        }

        impl Eq for $ty {}

        impl Hash for $ty {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.raw_id().hash(state);
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.raw_id())
            }
        }
    )*};
}

raw_id_semantics!(
    CommunicationIdentifier,
    CommunicationUserIdentifier,
    PhoneNumberIdentifier,
    MicrosoftTeamsUserIdentifier,
    MicrosoftTeamsAppIdentifier,
    TeamsExtensionUserIdentifier,
    UnknownIdentifier,
);

/// A Communication Services user, for example one created by the Identity API.
///
/// The id is the full raw id, e.g. `8:acs:<resource id>_<user id>`.
#[derive(Clone, Debug)]
pub struct CommunicationUserIdentifier {
    /// The full id of the user, e.g. `8:acs:…`.
    pub id: String,
}

impl CommunicationUserIdentifier {
    /// Creates an identifier from the full id of a Communication Services user.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }

    /// The raw id, which for a Communication Services user is the id itself.
    pub fn raw_id(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.id)
    }
}

/// A phone number.
///
/// The raw id is `4:` followed by the number exactly as stored here. Both `+14255550123` and the
/// older form without `+` are accepted and kept as given.
#[derive(Clone, Debug)]
pub struct PhoneNumberIdentifier {
    /// The phone number, usually in E.164 format (`+14255550123`), or `anonymous`.
    pub phone_number: String,
}

impl PhoneNumberIdentifier {
    /// Creates an identifier for a phone number.
    pub fn new(phone_number: impl Into<String>) -> Self {
        Self { phone_number: phone_number.into() }
    }

    /// The raw id, `4:<phone number>`.
    pub fn raw_id(&self) -> Cow<'_, str> {
        Cow::Owned(format!("{PHONE}{}", self.phone_number))
    }

    /// Whether this is the anonymous phone number (`4:anonymous`).
    pub fn is_anonymous(&self) -> bool {
        self.phone_number == ANONYMOUS_PHONE
    }

    /// The asserted id: the text after the last `_`, when there is one and it is not empty.
    ///
    /// Always `None` for the anonymous number.
    pub fn asserted_id(&self) -> Option<&str> {
        if self.is_anonymous() {
            return None;
        }
        let start = self.phone_number.rfind('_')? + 1;
        (start > 0 && start < self.phone_number.len()).then(|| &self.phone_number[start..])
    }
}

/// A Microsoft Teams user, or an anonymous Teams meeting participant.
#[derive(Clone, Debug)]
pub struct MicrosoftTeamsUserIdentifier {
    /// The Entra ID object id of the user, or the visitor id of an anonymous user.
    pub user_id: String,
    /// Whether the user is an anonymous Teams visitor (`8:teamsvisitor:`).
    pub is_anonymous: bool,
    /// The cloud of the user; ignored for anonymous users.
    pub cloud: CommunicationCloudEnvironment,
}

impl MicrosoftTeamsUserIdentifier {
    /// Creates a non-anonymous Teams user in the public cloud.
    pub fn new(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            is_anonymous: false,
            cloud: CommunicationCloudEnvironment::Public,
        }
    }

    /// Creates an anonymous Teams visitor.
    pub fn anonymous(user_id: impl Into<String>) -> Self {
        Self { is_anonymous: true, ..Self::new(user_id) }
    }

    /// Returns the identifier with `cloud` set.
    #[must_use]
    pub fn with_cloud(mut self, cloud: CommunicationCloudEnvironment) -> Self {
        self.cloud = cloud;
        self
    }

    /// The raw id: `8:teamsvisitor:`, `8:orgid:`, `8:dod:` or `8:gcch:` followed by the user id.
    pub fn raw_id(&self) -> Cow<'_, str> {
        let prefix = if self.is_anonymous {
            TEAMS_USER_ANONYMOUS
        } else {
            match self.cloud {
                CommunicationCloudEnvironment::Public => TEAMS_USER_PUBLIC,
                CommunicationCloudEnvironment::Dod => TEAMS_USER_DOD,
                CommunicationCloudEnvironment::Gcch => TEAMS_USER_GCCH,
            }
        };
        Cow::Owned(format!("{prefix}{}", self.user_id))
    }
}

/// A Microsoft Teams application, such as a bot.
#[derive(Clone, Debug)]
pub struct MicrosoftTeamsAppIdentifier {
    /// The application id.
    pub app_id: String,
    /// The cloud of the application.
    pub cloud: CommunicationCloudEnvironment,
}

impl MicrosoftTeamsAppIdentifier {
    /// Creates a Teams application identifier in the public cloud.
    pub fn new(app_id: impl Into<String>) -> Self {
        Self { app_id: app_id.into(), cloud: CommunicationCloudEnvironment::Public }
    }

    /// Returns the identifier with `cloud` set.
    #[must_use]
    pub fn with_cloud(mut self, cloud: CommunicationCloudEnvironment) -> Self {
        self.cloud = cloud;
        self
    }

    /// The raw id: `28:orgid:`, `28:dod:` or `28:gcch:` followed by the application id.
    pub fn raw_id(&self) -> Cow<'_, str> {
        let prefix = match self.cloud {
            CommunicationCloudEnvironment::Public => TEAMS_APP_PUBLIC,
            CommunicationCloudEnvironment::Dod => TEAMS_APP_DOD,
            CommunicationCloudEnvironment::Gcch => TEAMS_APP_GCCH,
        };
        Cow::Owned(format!("{prefix}{}", self.app_id))
    }
}

/// A Teams Phone user who uses a Communication Services resource to extend their Teams Phone set-up.
///
/// The raw id is `8:acs:<resource id>_<tenant id>_<user id>` (`8:dod-acs:` / `8:gcch-acs:` in the
/// other clouds).
#[derive(Clone, Debug)]
pub struct TeamsExtensionUserIdentifier {
    /// The Entra ID object id of the user.
    pub user_id: String,
    /// The Entra ID tenant id of the user.
    pub tenant_id: String,
    /// The Communication Services resource id.
    pub resource_id: String,
    /// The cloud of the user.
    pub cloud: CommunicationCloudEnvironment,
}

impl TeamsExtensionUserIdentifier {
    /// Creates a Teams extension user in the public cloud.
    pub fn new(
        user_id: impl Into<String>,
        tenant_id: impl Into<String>,
        resource_id: impl Into<String>,
    ) -> Self {
        Self {
            user_id: user_id.into(),
            tenant_id: tenant_id.into(),
            resource_id: resource_id.into(),
            cloud: CommunicationCloudEnvironment::Public,
        }
    }

    /// Returns the identifier with `cloud` set.
    #[must_use]
    pub fn with_cloud(mut self, cloud: CommunicationCloudEnvironment) -> Self {
        self.cloud = cloud;
        self
    }

    /// The raw id, `8:acs:<resource id>_<tenant id>_<user id>` or the DoD/GCCH equivalent.
    pub fn raw_id(&self) -> Cow<'_, str> {
        let prefix = match self.cloud {
            CommunicationCloudEnvironment::Public => ACS_USER,
            CommunicationCloudEnvironment::Dod => ACS_USER_DOD,
            CommunicationCloudEnvironment::Gcch => ACS_USER_GCCH,
        };
        Cow::Owned(format!("{prefix}{}_{}_{}", self.resource_id, self.tenant_id, self.user_id))
    }
}

/// An identifier of a kind this library does not recognise; the raw id is kept as is.
#[derive(Clone, Debug)]
pub struct UnknownIdentifier {
    /// The raw id.
    pub id: String,
}

impl UnknownIdentifier {
    /// Creates an unknown identifier from its raw id.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }

    /// The raw id, which is the id itself.
    pub fn raw_id(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.id)
    }
}

/// Any Communication Services identifier.
///
/// Two identifiers are equal when their raw ids are equal, whatever their kind.
/// New kinds may be added in later versions, so the enum is non-exhaustive.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CommunicationIdentifier {
    /// A Communication Services user.
    CommunicationUser(CommunicationUserIdentifier),
    /// A phone number.
    PhoneNumber(PhoneNumberIdentifier),
    /// A Microsoft Teams user.
    MicrosoftTeamsUser(MicrosoftTeamsUserIdentifier),
    /// A Microsoft Teams application.
    MicrosoftTeamsApp(MicrosoftTeamsAppIdentifier),
    /// A Teams Phone extension user.
    TeamsExtensionUser(TeamsExtensionUserIdentifier),
    /// Any other raw id.
    Unknown(UnknownIdentifier),
}

impl CommunicationIdentifier {
    /// Creates the identifier a raw id encodes.
    ///
    /// Never fails: raw ids that match no known kind (including the empty string) become
    /// [`CommunicationIdentifier::Unknown`].
    pub fn from_raw_id(raw_id: &str) -> Self {
        if let Some(number) = raw_id.strip_prefix(PHONE) {
            return Self::PhoneNumber(PhoneNumberIdentifier::new(number));
        }

        let mut segments = raw_id.split(':');
        let (Some(first), Some(second), Some(suffix), None) =
            (segments.next(), segments.next(), segments.next(), segments.next())
        else {
            return Self::Unknown(UnknownIdentifier::new(raw_id));
        };
        // `first:second:` is a prefix of `raw_id`, so slicing cannot fail.
        let prefix = &raw_id[..first.len() + second.len() + 2];

        use CommunicationCloudEnvironment as Cloud;
        match prefix {
            TEAMS_USER_ANONYMOUS => {
                Self::MicrosoftTeamsUser(MicrosoftTeamsUserIdentifier::anonymous(suffix))
            }
            TEAMS_USER_PUBLIC => {
                Self::MicrosoftTeamsUser(MicrosoftTeamsUserIdentifier::new(suffix))
            }
            TEAMS_USER_DOD => Self::MicrosoftTeamsUser(
                MicrosoftTeamsUserIdentifier::new(suffix).with_cloud(Cloud::Dod),
            ),
            TEAMS_USER_GCCH => Self::MicrosoftTeamsUser(
                MicrosoftTeamsUserIdentifier::new(suffix).with_cloud(Cloud::Gcch),
            ),
            ACS_USER => Self::acs_user(raw_id, suffix, Cloud::Public),
            ACS_USER_DOD => Self::acs_user(raw_id, suffix, Cloud::Dod),
            ACS_USER_GCCH => Self::acs_user(raw_id, suffix, Cloud::Gcch),
            SPOOL_USER => Self::CommunicationUser(CommunicationUserIdentifier::new(raw_id)),
            TEAMS_APP_PUBLIC => Self::MicrosoftTeamsApp(MicrosoftTeamsAppIdentifier::new(suffix)),
            TEAMS_APP_DOD => Self::MicrosoftTeamsApp(
                MicrosoftTeamsAppIdentifier::new(suffix).with_cloud(Cloud::Dod),
            ),
            TEAMS_APP_GCCH => Self::MicrosoftTeamsApp(
                MicrosoftTeamsAppIdentifier::new(suffix).with_cloud(Cloud::Gcch),
            ),
            _ => Self::Unknown(UnknownIdentifier::new(raw_id)),
        }
    }

    /// A Teams extension user when the suffix has exactly three `_` parts, else an ACS user.
    fn acs_user(raw_id: &str, suffix: &str, cloud: CommunicationCloudEnvironment) -> Self {
        let mut parts = suffix.split('_');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(resource_id), Some(tenant_id), Some(user_id), None) => Self::TeamsExtensionUser(
                TeamsExtensionUserIdentifier::new(user_id, tenant_id, resource_id)
                    .with_cloud(cloud),
            ),
            _ => Self::CommunicationUser(CommunicationUserIdentifier::new(raw_id)),
        }
    }

    /// The raw id of the identifier.
    ///
    /// Use it to store an identifier, for example as a database key, and restore it with
    /// [`from_raw_id`](Self::from_raw_id).
    pub fn raw_id(&self) -> Cow<'_, str> {
        match self {
            Self::CommunicationUser(id) => id.raw_id(),
            Self::PhoneNumber(id) => id.raw_id(),
            Self::MicrosoftTeamsUser(id) => id.raw_id(),
            Self::MicrosoftTeamsApp(id) => id.raw_id(),
            Self::TeamsExtensionUser(id) => id.raw_id(),
            Self::Unknown(id) => id.raw_id(),
        }
    }

    /// The kind name used by the JSON identifier model of other Communication Services APIs:
    /// `communicationUser`, `phoneNumber`, `microsoftTeamsUser`, `microsoftTeamsApp`,
    /// `teamsExtensionUser` or `unknown`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CommunicationUser(_) => "communicationUser",
            Self::PhoneNumber(_) => "phoneNumber",
            Self::MicrosoftTeamsUser(_) => "microsoftTeamsUser",
            Self::MicrosoftTeamsApp(_) => "microsoftTeamsApp",
            Self::TeamsExtensionUser(_) => "teamsExtensionUser",
            Self::Unknown(_) => "unknown",
        }
    }
}

impl FromStr for CommunicationIdentifier {
    type Err = Error;

    /// Parses a raw id like [`CommunicationIdentifier::from_raw_id`], but rejects an empty string.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(Error::with_message(
                ErrorKind::DataConversion,
                "a communication identifier raw id must not be empty",
            ));
        }
        Ok(Self::from_raw_id(s))
    }
}

macro_rules! into_identifier {
    ($($variant:ident($ty:ty)),* $(,)?) => {$(
        impl From<$ty> for CommunicationIdentifier {
            fn from(value: $ty) -> Self {
                Self::$variant(value)
            }
        }
    )*};
}

into_identifier!(
    CommunicationUser(CommunicationUserIdentifier),
    PhoneNumber(PhoneNumberIdentifier),
    MicrosoftTeamsUser(MicrosoftTeamsUserIdentifier),
    MicrosoftTeamsApp(MicrosoftTeamsAppIdentifier),
    TeamsExtensionUser(TeamsExtensionUserIdentifier),
    Unknown(UnknownIdentifier),
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    const RESOURCE: &str = "2dee53b4-368b-45b4-ab52-8493fb117652";
    const TENANT: &str = "37691ec4-57fb-4c0f-ae31-32791610cb14";
    const USER: &str = "45ab2481-1c1c-4005-be24-0ffb879b1130";

    fn parse(raw: &str) -> CommunicationIdentifier {
        CommunicationIdentifier::from_raw_id(raw)
    }

    #[track_caller]
    fn assert_communication_user(raw: &str) {
        match parse(raw) {
            CommunicationIdentifier::CommunicationUser(user) => assert_eq!(user.id, raw),
            other => panic!("{raw}: expected communicationUser, got {}", other.kind()),
        }
    }

    #[test]
    fn acs_user_prefixes_are_communication_users() {
        assert_communication_user(&format!(
            "8:acs:{RESOURCE}_00000005-14a2-493b-8a72-5a3a0d000081"
        ));
        assert_communication_user(&format!("8:spool:{RESOURCE}_{USER}"));
        assert_communication_user(&format!("8:dod-acs:{RESOURCE}_{USER}"));
        assert_communication_user(&format!("8:gcch-acs:{RESOURCE}_{USER}"));
        assert_communication_user("8:acs:no-underscore-at-all");
        assert_communication_user("8:acs:a_b_c_d");
    }

    #[test]
    fn spool_user_with_three_parts_stays_communication_user() {
        assert_communication_user(&format!("8:spool:{RESOURCE}_{TENANT}_{USER}"));
    }

    #[test]
    fn acs_prefix_with_three_parts_is_teams_extension_user() {
        for (prefix, cloud) in [
            ("8:acs:", CommunicationCloudEnvironment::Public),
            ("8:dod-acs:", CommunicationCloudEnvironment::Dod),
            ("8:gcch-acs:", CommunicationCloudEnvironment::Gcch),
        ] {
            let raw = format!("{prefix}{RESOURCE}_{TENANT}_{USER}");
            match parse(&raw) {
                CommunicationIdentifier::TeamsExtensionUser(user) => {
                    assert_eq!(user.resource_id, RESOURCE);
                    assert_eq!(user.tenant_id, TENANT);
                    assert_eq!(user.user_id, USER);
                    assert_eq!(user.cloud, cloud);
                    assert_eq!(user.raw_id(), raw);
                }
                other => panic!("{raw}: expected teamsExtensionUser, got {}", other.kind()),
            }
        }
    }

    #[test]
    fn teams_extension_user_builds_raw_id_per_cloud() {
        let user = TeamsExtensionUserIdentifier::new(USER, TENANT, RESOURCE);
        assert_eq!(user.raw_id(), format!("8:acs:{RESOURCE}_{TENANT}_{USER}"));
        let dod = user.clone().with_cloud(CommunicationCloudEnvironment::Dod);
        assert_eq!(dod.raw_id(), format!("8:dod-acs:{RESOURCE}_{TENANT}_{USER}"));
        let gcch = user.with_cloud(CommunicationCloudEnvironment::Gcch);
        assert_eq!(gcch.raw_id(), format!("8:gcch-acs:{RESOURCE}_{TENANT}_{USER}"));
    }

    #[test]
    fn phone_numbers_with_and_without_plus() {
        for raw in ["4:+112345556789", "4:112345556789"] {
            match parse(raw) {
                CommunicationIdentifier::PhoneNumber(phone) => {
                    assert_eq!(phone.phone_number, &raw[2..]);
                    assert!(!phone.is_anonymous());
                    assert_eq!(phone.asserted_id(), None);
                    assert_eq!(phone.raw_id(), raw);
                }
                other => panic!("{raw}: expected phoneNumber, got {}", other.kind()),
            }
        }
    }

    #[test]
    fn anonymous_phone_number() {
        let CommunicationIdentifier::PhoneNumber(phone) = parse("4:anonymous") else {
            panic!("expected a phone number");
        };
        assert!(phone.is_anonymous());
        assert_eq!(phone.asserted_id(), None);
        assert_eq!(phone.phone_number, "anonymous");
    }

    #[test]
    fn phone_number_asserted_id_is_after_last_underscore() {
        let CommunicationIdentifier::PhoneNumber(phone) = parse("4:+14255550123_abc_123") else {
            panic!("expected a phone number");
        };
        assert_eq!(phone.asserted_id(), Some("123"));
        assert!(!phone.is_anonymous());

        assert_eq!(PhoneNumberIdentifier::new("+14255550123_").asserted_id(), None);
        assert_eq!(PhoneNumberIdentifier::new("_x").asserted_id(), Some("x"));
        assert_eq!(PhoneNumberIdentifier::new("+14255550123").asserted_id(), None);
    }

    #[test]
    fn phone_prefix_wins_even_with_extra_colons() {
        let CommunicationIdentifier::PhoneNumber(phone) = parse("4:+1:2:3") else {
            panic!("expected a phone number");
        };
        assert_eq!(phone.phone_number, "+1:2:3");
    }

    #[test]
    fn teams_users_per_cloud_and_anonymous() {
        let cases = [
            ("8:orgid:", false, CommunicationCloudEnvironment::Public),
            ("8:dod:", false, CommunicationCloudEnvironment::Dod),
            ("8:gcch:", false, CommunicationCloudEnvironment::Gcch),
            ("8:teamsvisitor:", true, CommunicationCloudEnvironment::Public),
        ];
        for (prefix, anonymous, cloud) in cases {
            let raw = format!("{prefix}{USER}");
            match parse(&raw) {
                CommunicationIdentifier::MicrosoftTeamsUser(user) => {
                    assert_eq!(user.user_id, USER);
                    assert_eq!(user.is_anonymous, anonymous, "{raw}");
                    assert_eq!(user.cloud, cloud, "{raw}");
                    assert_eq!(user.raw_id(), raw);
                }
                other => panic!("{raw}: expected microsoftTeamsUser, got {}", other.kind()),
            }
        }
    }

    #[test]
    fn anonymous_teams_user_ignores_cloud_in_raw_id() {
        let user = MicrosoftTeamsUserIdentifier::anonymous(USER)
            .with_cloud(CommunicationCloudEnvironment::Dod);
        assert_eq!(user.raw_id(), format!("8:teamsvisitor:{USER}"));
    }

    #[test]
    fn teams_apps_per_cloud() {
        let cases = [
            ("28:orgid:", CommunicationCloudEnvironment::Public),
            ("28:dod:", CommunicationCloudEnvironment::Dod),
            ("28:gcch:", CommunicationCloudEnvironment::Gcch),
        ];
        for (prefix, cloud) in cases {
            let raw = format!("{prefix}{USER}");
            match parse(&raw) {
                CommunicationIdentifier::MicrosoftTeamsApp(app) => {
                    assert_eq!(app.app_id, USER);
                    assert_eq!(app.cloud, cloud);
                    assert_eq!(app.raw_id(), raw);
                }
                other => panic!("{raw}: expected microsoftTeamsApp, got {}", other.kind()),
            }
        }
    }

    #[test]
    fn unknown_ids_are_kept_verbatim() {
        for raw in [
            "",
            "28:gcch-global:abc",
            "28:dod-global:abc",
            "28:ag08-global:abc",
            "28:abc",
            "48:abc",
            "8:orgid:a:b",
            "8:acs",
            "no colons",
            "8:ACS:uppercase-prefix",
            "::",
        ] {
            match parse(raw) {
                CommunicationIdentifier::Unknown(unknown) => assert_eq!(unknown.id, raw),
                other => panic!("{raw:?}: expected unknown, got {}", other.kind()),
            }
        }
    }

    #[test]
    fn equality_and_hash_follow_raw_id() {
        let a = CommunicationIdentifier::from(CommunicationUserIdentifier::new("28:orgid:x"));
        let b = CommunicationIdentifier::from(MicrosoftTeamsAppIdentifier::new("x"));
        assert_eq!(a, b);
        let set: HashSet<_> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);

        assert_ne!(
            CommunicationIdentifier::from(MicrosoftTeamsUserIdentifier::new(USER)),
            CommunicationIdentifier::from(
                MicrosoftTeamsUserIdentifier::new(USER)
                    .with_cloud(CommunicationCloudEnvironment::Dod)
            ),
        );
        assert_eq!(
            MicrosoftTeamsUserIdentifier::anonymous(USER),
            MicrosoftTeamsUserIdentifier::anonymous(USER)
                .with_cloud(CommunicationCloudEnvironment::Gcch),
        );
    }

    #[test]
    fn display_and_from_str_use_raw_id() {
        let raw = format!("8:acs:{RESOURCE}_{USER}");
        let id: CommunicationIdentifier = raw.parse().expect("non-empty raw id parses");
        assert_eq!(id.to_string(), raw);
        assert_eq!(id.kind(), "communicationUser");
        assert!("".parse::<CommunicationIdentifier>().is_err());
        assert_eq!(PhoneNumberIdentifier::new("+1").to_string(), "4:+1");
    }

    #[test]
    fn cloud_environment_round_trips_through_strings() {
        for cloud in [
            CommunicationCloudEnvironment::Public,
            CommunicationCloudEnvironment::Dod,
            CommunicationCloudEnvironment::Gcch,
        ] {
            assert_eq!(
                cloud.to_string().parse::<CommunicationCloudEnvironment>().ok(),
                Some(cloud)
            );
        }
        assert_eq!(
            "GCCH".parse::<CommunicationCloudEnvironment>().ok(),
            Some(CommunicationCloudEnvironment::Gcch)
        );
        assert!("mooncake".parse::<CommunicationCloudEnvironment>().is_err());
        assert_eq!(CommunicationCloudEnvironment::default(), CommunicationCloudEnvironment::Public);
    }

    /// Raw ids built from the known prefixes with suffixes that exercise `:` and `_` handling.
    fn raw_id_strategy() -> impl Strategy<Value = String> {
        let prefix = prop::sample::select(vec![
            "",
            "4:",
            "8:acs:",
            "8:spool:",
            "8:dod-acs:",
            "8:gcch-acs:",
            "8:orgid:",
            "8:dod:",
            "8:gcch:",
            "8:teamsvisitor:",
            "28:orgid:",
            "28:dod:",
            "28:gcch:",
            "28:gcch-global:",
            "8:",
            "28:",
        ]);
        (prefix, "[a-zA-Z0-9_:+.-]{0,40}").prop_map(|(p, s)| format!("{p}{s}"))
    }

    /// Components that survive the trip into a raw id and back (no `:`; `_` only where allowed).
    fn identifier_strategy() -> impl Strategy<Value = CommunicationIdentifier> {
        let part = "[a-zA-Z0-9-]{1,36}";
        let cloud = prop::sample::select(vec![
            CommunicationCloudEnvironment::Public,
            CommunicationCloudEnvironment::Dod,
            CommunicationCloudEnvironment::Gcch,
        ]);
        prop_oneof![
            (
                prop::sample::select(vec!["8:acs:", "8:spool:", "8:dod-acs:", "8:gcch-acs:"]),
                part,
                part
            )
                .prop_map(
                    |(p, r, u)| CommunicationUserIdentifier::new(format!("{p}{r}_{u}")).into()
                ),
            "\\+?[0-9]{1,15}(_[a-z0-9]{1,8})?".prop_map(|n| PhoneNumberIdentifier::new(n).into()),
            (part, any::<bool>(), cloud.clone()).prop_map(|(u, anonymous, cloud)| {
                let user = if anonymous {
                    MicrosoftTeamsUserIdentifier::anonymous(u)
                } else {
                    MicrosoftTeamsUserIdentifier::new(u).with_cloud(cloud)
                };
                user.into()
            }),
            (part, cloud.clone()).prop_map(|(a, cloud)| MicrosoftTeamsAppIdentifier::new(a)
                .with_cloud(cloud)
                .into()),
            (part, part, part, cloud).prop_map(|(u, t, r, cloud)| {
                TeamsExtensionUserIdentifier::new(u, t, r).with_cloud(cloud).into()
            }),
        ]
    }

    proptest! {
        #[test]
        fn raw_id_round_trip_is_stable(raw in raw_id_strategy()) {
            let id = CommunicationIdentifier::from_raw_id(&raw);
            prop_assert_eq!(id.raw_id(), raw.as_str());
            let again = CommunicationIdentifier::from_raw_id(&id.raw_id());
            prop_assert_eq!(again.kind(), id.kind());
        }

        #[test]
        fn arbitrary_strings_round_trip(raw in any::<String>()) {
            let id = CommunicationIdentifier::from_raw_id(&raw);
            prop_assert_eq!(id.raw_id(), raw.as_str());
        }

        #[test]
        fn identifier_round_trip_keeps_kind_and_fields(id in identifier_strategy()) {
            let parsed = CommunicationIdentifier::from_raw_id(&id.raw_id());
            prop_assert_eq!(parsed.kind(), id.kind());
            prop_assert_eq!(&parsed, &id);
            match (&parsed, &id) {
                (CommunicationIdentifier::MicrosoftTeamsUser(a), CommunicationIdentifier::MicrosoftTeamsUser(b)) => {
                    prop_assert_eq!(a.is_anonymous, b.is_anonymous);
                    prop_assert_eq!(&a.user_id, &b.user_id);
                    if !a.is_anonymous {
                        prop_assert_eq!(a.cloud, b.cloud);
                    }
                }
                (CommunicationIdentifier::TeamsExtensionUser(a), CommunicationIdentifier::TeamsExtensionUser(b)) => {
                    prop_assert_eq!((&a.user_id, &a.tenant_id, &a.resource_id, a.cloud),
                                    (&b.user_id, &b.tenant_id, &b.resource_id, b.cloud));
                }
                (CommunicationIdentifier::MicrosoftTeamsApp(a), CommunicationIdentifier::MicrosoftTeamsApp(b)) => {
                    prop_assert_eq!((&a.app_id, a.cloud), (&b.app_id, b.cloud));
                }
                _ => {}
            }
        }
    }
}
