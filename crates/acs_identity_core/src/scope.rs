//! Token scopes and lifetimes, with ACS's validation messages.

use std::fmt;

use crate::ApiVersion;

/// A scope an access token can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `chat`: full Chat access.
    Chat,
    /// `voip`: full Calling access.
    Voip,
    /// `chat.join`: Chat without creating, deleting or updating threads (2023-10-01+).
    ChatJoin,
    /// `chat.join.limited`: like `chat.join`, without adding or removing participants (2023-10-01+).
    ChatJoinLimited,
    /// `voip.join`: Calling without starting new calls (2023-10-01+).
    VoipJoin,
}

impl Scope {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Chat => "chat",
            Scope::Voip => "voip",
            Scope::ChatJoin => "chat.join",
            Scope::ChatJoinLimited => "chat.join.limited",
            Scope::VoipJoin => "voip.join",
        }
    }

    /// Parses a wire name as `version` allows it. Matching is exact (case-sensitive).
    pub fn parse(s: &str, version: ApiVersion) -> Option<Scope> {
        let scope = match s {
            "chat" => Scope::Chat,
            "voip" => Scope::Voip,
            "chat.join" => Scope::ChatJoin,
            "chat.join.limited" => Scope::ChatJoinLimited,
            "voip.join" => Scope::VoipJoin,
            _ => return None,
        };
        let join = matches!(scope, Scope::ChatJoin | Scope::ChatJoinLimited | Scope::VoipJoin);
        (!join || version.has_join_scopes()).then_some(scope)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-empty list of distinct scopes, in the order they were requested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

/// A request field failed validation; carries ACS's message and `target`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScopeError {
    /// Human-readable message, worded as ACS words it.
    pub message: String,
    /// The offending field, cased as ACS cases it.
    pub target: &'static str,
}

impl Scopes {
    /// Validates the `scopes` of an issue-token request.
    ///
    /// `None` (absent or `null`) and `[]` are different errors, as in ACS.
    pub fn from_request(
        scopes: Option<&[String]>,
        version: ApiVersion,
    ) -> Result<Scopes, ScopeError> {
        let Some(scopes) = scopes else {
            return Err(ScopeError {
                message: "Scopes: The Scopes field is required.".to_owned(),
                target: "Scopes",
            });
        };
        Self::parse_list(scopes, version, "scopes")?.ok_or_else(|| ScopeError {
            message: "Invalid scopes - Scopes field is required.".to_owned(),
            target: "scopes",
        })
    }

    /// Validates `createTokenWithScopes` of a create request: absent or empty means "no token".
    pub fn from_create_request(
        scopes: Option<&[String]>,
        version: ApiVersion,
    ) -> Result<Option<Scopes>, ScopeError> {
        match scopes {
            None => Ok(None),
            Some(s) => Self::parse_list(s, version, "createTokenWithScopes"),
        }
    }

    fn parse_list(
        scopes: &[String],
        version: ApiVersion,
        target: &'static str,
    ) -> Result<Option<Scopes>, ScopeError> {
        let mut out: Vec<Scope> = Vec::with_capacity(scopes.len());
        for s in scopes {
            let scope = Scope::parse(s, version).ok_or_else(|| ScopeError {
                message: format!(
                    "Invalid scopes - '{}' is not a valid scope for api-version {version}.",
                    truncate_for_message(s)
                ),
                target,
            })?;
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        Ok((!out.is_empty()).then_some(Scopes(out)))
    }

    /// Builds a list directly (duplicates dropped); `None` when empty.
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Option<Scopes> {
        let mut out: Vec<Scope> = Vec::new();
        for s in scopes {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        (!out.is_empty()).then_some(Scopes(out))
    }

    /// The scopes in request order.
    pub fn as_slice(&self) -> &[Scope] {
        &self.0
    }

    /// The `acsScope` claim: comma-separated, request order.
    pub fn claim(&self) -> String {
        self.0.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
    }
}

fn truncate_for_message(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).take(64).collect();
    if s.chars().count() > 64 {
        format!("{clean}...")
    } else {
        clean
    }
}

/// A token lifetime in minutes, within ACS's [60, 1440].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenLifetime(u16);

impl TokenLifetime {
    /// The shortest lifetime ACS issues.
    pub const MIN_MINUTES: i64 = 60;
    /// The longest (and default) lifetime.
    pub const MAX_MINUTES: i64 = 1440;
    /// 24 hours.
    pub const DEFAULT: TokenLifetime = TokenLifetime(1440);

    /// Validates `expiresInMinutes`; `None` gives the default.
    pub fn from_request(minutes: Option<i64>) -> Result<TokenLifetime, ScopeError> {
        match minutes {
            None => Ok(Self::DEFAULT),
            Some(m) if (Self::MIN_MINUTES..=Self::MAX_MINUTES).contains(&m) => {
                Ok(TokenLifetime(m as u16))
            }
            Some(m) => Err(ScopeError {
                message: format!(
                    "ExpiresInMinutes value {m} is invalid. Value must be within the [60, 1440] interval."
                ),
                target: "ExpiresInMinutes",
            }),
        }
    }

    /// The lifetime in minutes.
    pub fn minutes(self) -> u16 {
        self.0
    }

    /// The lifetime as a duration.
    pub fn duration(self) -> time::Duration {
        time::Duration::minutes(i64::from(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn missing_and_empty_scopes_are_different_errors() {
        let missing = Scopes::from_request(None, ApiVersion::V2023_10_01).unwrap_err();
        assert_eq!(missing.message, "Scopes: The Scopes field is required.");
        assert_eq!(missing.target, "Scopes");
        let empty = Scopes::from_request(Some(&[]), ApiVersion::V2023_10_01).unwrap_err();
        assert_eq!(empty.message, "Invalid scopes - Scopes field is required.");
        assert_eq!(empty.target, "scopes");
    }

    #[test]
    fn join_scopes_need_2023_10_01() {
        let s = strings(&["voip.join"]);
        assert!(Scopes::from_request(Some(&s), ApiVersion::V2022_10_01).is_err());
        let ok = Scopes::from_request(Some(&s), ApiVersion::V2023_10_01).unwrap();
        assert_eq!(ok.as_slice(), &[Scope::VoipJoin]);
    }

    #[test]
    fn claim_keeps_request_order_and_drops_duplicates() {
        let s = strings(&["voip", "chat", "voip"]);
        let scopes = Scopes::from_request(Some(&s), ApiVersion::V2021_03_07).unwrap();
        assert_eq!(scopes.claim(), "voip,chat");
    }

    #[test]
    fn unknown_and_miscased_scopes_are_rejected() {
        for bad in ["Chat", "email", "", "chat "] {
            let s = strings(&[bad]);
            let err = Scopes::from_request(Some(&s), ApiVersion::LATEST).unwrap_err();
            assert_eq!(err.target, "scopes");
        }
    }

    #[test]
    fn create_with_no_or_empty_scopes_means_no_token() {
        assert_eq!(Scopes::from_create_request(None, ApiVersion::LATEST), Ok(None));
        assert_eq!(Scopes::from_create_request(Some(&[]), ApiVersion::LATEST), Ok(None));
        let s = strings(&["chat"]);
        assert!(Scopes::from_create_request(Some(&s), ApiVersion::LATEST).unwrap().is_some());
    }

    #[test]
    fn lifetime_bounds_match_acs() {
        assert_eq!(TokenLifetime::from_request(None).unwrap().minutes(), 1440);
        assert_eq!(TokenLifetime::from_request(Some(60)).unwrap().minutes(), 60);
        assert_eq!(TokenLifetime::from_request(Some(1440)).unwrap().minutes(), 1440);
        let low = TokenLifetime::from_request(Some(59)).unwrap_err();
        assert_eq!(
            low.message,
            "ExpiresInMinutes value 59 is invalid. Value must be within the [60, 1440] interval."
        );
        assert_eq!(low.target, "ExpiresInMinutes");
        assert!(TokenLifetime::from_request(Some(1441)).is_err());
        assert!(TokenLifetime::from_request(Some(i64::MIN)).is_err());
    }
}
