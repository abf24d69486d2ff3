//! The `api-version` query parameter and what each version allows.

use std::fmt;
use std::str::FromStr;

/// Declares [`ApiVersion`] with its literal values; [`ApiVersion::ALL`] is generated from the
/// same list, so it cannot miss a variant.
macro_rules! api_versions {
    ($($(#[$doc:meta])* $variant:ident => $literal:literal,)+) => {
        /// An api-version the service serves.
        ///
        /// Ordered by release, so `v >= ApiVersion::V2022_10_01` asks "has the 2022-10-01 features".
        /// Previews sort by their date like the stable versions.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ApiVersion {
            $($(#[$doc])* $variant,)+
        }

        impl ApiVersion {
            /// Every served version, oldest first.
            pub const ALL: [ApiVersion; [$(stringify!($variant)),+].len()] = [$(ApiVersion::$variant,)+];

            /// The literal query-parameter value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ApiVersion::$variant => $literal,)+
                }
            }
        }
    };
}

api_versions! {
    /// `2021-02-22-preview1`: the first version with the current request shapes.
    V2021_02_22Preview1 => "2021-02-22-preview1",
    /// `2021-03-07`: first stable version; scopes `chat`, `voip`.
    V2021_03_07 => "2021-03-07",
    /// `2021-03-31-preview1`: adds the Teams user exchange (`{token}` body).
    V2021_03_31Preview1 => "2021-03-31-preview1",
    /// `2021-10-31-preview`: same as 2021-03-31-preview1.
    V2021_10_31Preview => "2021-10-31-preview",
    /// `2022-06-01`: Teams user exchange with `{token, appId, userId}`.
    V2022_06_01 => "2022-06-01",
    /// `2022-10-01`: `expiresInMinutes` on create and issue.
    V2022_10_01 => "2022-10-01",
    /// `2023-10-01`: scopes `chat.join`, `chat.join.limited`, `voip.join`.
    V2023_10_01 => "2023-10-01",
    /// `2025-03-02-preview`: `customId`, `GET /identities/{id}`, Teams extension and Entra routes.
    V2025_03_02Preview => "2025-03-02-preview",
    /// `2025-06-30`: 2023-10-01 plus the Teams extension routes.
    V2025_06_30 => "2025-06-30",
    /// `2026-07-22`: same wire shape as 2025-06-30.
    V2026_07_22 => "2026-07-22",
    /// `2026-09-23`: same wire shape as 2025-06-30.
    V2026_09_23 => "2026-09-23",
}

impl ApiVersion {
    /// The newest stable version.
    pub const LATEST: ApiVersion = ApiVersion::V2026_09_23;

    /// Every version, always `true`: the gate of operations that exist in all of them.
    pub fn any(self) -> bool {
        true
    }

    /// `expiresInMinutes` is part of create and issue requests.
    pub fn has_custom_expiry(self) -> bool {
        self >= ApiVersion::V2022_10_01
    }

    /// The `*.join` scopes exist.
    pub fn has_join_scopes(self) -> bool {
        self >= ApiVersion::V2023_10_01
    }

    /// `customId` on create and `GET /identities/{id}` (only the 2025-03-02 preview).
    pub fn has_custom_id(self) -> bool {
        self == ApiVersion::V2025_03_02Preview
    }

    /// `POST /teamsUser/:exchangeAccessToken` exists.
    pub fn has_teams_user_exchange(self) -> bool {
        self >= ApiVersion::V2021_03_31Preview1
    }

    /// The Teams user exchange body carries `appId` and `userId`.
    pub fn teams_exchange_requires_app_and_user(self) -> bool {
        self >= ApiVersion::V2022_06_01
    }

    /// The `/access/teamsExtension/...` routes exist.
    pub fn has_teams_extension(self) -> bool {
        self >= ApiVersion::V2025_03_02Preview
    }

    /// The `/access/entra/...` routes exist (only the 2025-03-02 preview).
    pub fn has_entra(self) -> bool {
        self == ApiVersion::V2025_03_02Preview
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value is not an api-version this service serves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported api-version")]
pub struct UnsupportedApiVersion;

impl FromStr for ApiVersion {
    type Err = UnsupportedApiVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiVersion::ALL.into_iter().find(|v| v.as_str() == s).ok_or(UnsupportedApiVersion)
    }
}

/// Formats a list of versions the way the `api-supported-versions` header carries them.
pub fn supported_versions_header(versions: impl IntoIterator<Item = ApiVersion>) -> String {
    versions.into_iter().map(ApiVersion::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_version_and_round_trips() {
        for v in ApiVersion::ALL {
            assert_eq!(v.as_str().parse::<ApiVersion>(), Ok(v));
        }
        assert!("2020-07-20-preview2".parse::<ApiVersion>().is_err());
        assert!("2023-10-01 ".parse::<ApiVersion>().is_err());
        assert!("".parse::<ApiVersion>().is_err());
    }

    #[test]
    fn all_is_sorted_oldest_first() {
        let mut sorted = ApiVersion::ALL;
        sorted.sort();
        assert_eq!(sorted, ApiVersion::ALL);
        let mut by_date = ApiVersion::ALL;
        by_date.sort_by_key(|v| &v.as_str()[..10]);
        assert_eq!(by_date, ApiVersion::ALL);
        // The variants are declared in release order, so their discriminants are indexes.
        for (i, v) in ApiVersion::ALL.iter().enumerate() {
            assert_eq!(*v as usize, i);
        }
        assert_eq!(ApiVersion::ALL.last(), Some(&ApiVersion::LATEST));
    }

    #[test]
    fn feature_gates_follow_the_specs() {
        assert!(!ApiVersion::V2022_06_01.has_custom_expiry());
        assert!(ApiVersion::V2022_10_01.has_custom_expiry());
        assert!(!ApiVersion::V2022_10_01.has_join_scopes());
        assert!(ApiVersion::V2023_10_01.has_join_scopes());
        assert!(ApiVersion::V2025_03_02Preview.has_custom_id());
        assert!(!ApiVersion::V2025_06_30.has_custom_id());
        assert!(!ApiVersion::V2021_03_07.has_teams_user_exchange());
        assert!(ApiVersion::V2021_03_31Preview1.has_teams_user_exchange());
        assert!(ApiVersion::V2026_09_23.has_teams_extension());
        assert!(!ApiVersion::V2023_10_01.has_teams_extension());
        assert!(!ApiVersion::V2025_06_30.has_entra());
    }

    #[test]
    fn header_lists_versions_comma_separated() {
        assert_eq!(
            supported_versions_header([ApiVersion::V2021_03_07, ApiVersion::V2022_06_01]),
            "2021-03-07, 2022-06-01"
        );
    }
}
