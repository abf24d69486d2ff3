//! The local authority's directory: tenants, their applications and users, from the
//! configuration (`[[entra_directory.tenants]]`), and the well-known development tenant of
//! `--dev`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The development tenant's id.
pub const DEV_TENANT_ID: &str = "ac5de7e1-0000-4000-8000-000000000010";
/// The development application's client id (allowed to call the Identity API).
pub const DEV_CLIENT_ID: &str = "ac5de7e1-0000-4000-8000-000000000020";
/// The development application's service principal object id.
pub const DEV_APP_OBJECT_ID: &str = "ac5de7e1-0000-4000-8000-000000000021";
/// The development application's client secret. Public: anyone may read it in the README.
pub const DEV_CLIENT_SECRET: &str = "acsid~dev~client~secret~0000000000000001";
/// The development user's name (Teams-enabled).
pub const DEV_USERNAME: &str = "developer@acs-identity.localhost";
/// The development user's password. Public.
pub const DEV_PASSWORD: &str = "acsid~dev~password~0001";
/// The development user's object id.
pub const DEV_USER_OBJECT_ID: &str = "ac5de7e1-0000-4000-8000-000000000030";

/// A secret from the configuration (client secret, password): `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with `candidate` in time independent of where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(self.0.as_bytes(), candidate.as_bytes())
            .is_ok()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The directory (`[entra_directory]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Directory {
    /// Tenants (`[[entra_directory.tenants]]`); the first answers for `common`,
    /// `organizations` and `adfs`.
    pub tenants: Vec<Tenant>,
}

/// One tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// The tenant id (a GUID).
    pub tenant_id: String,
    /// Applications (`[[entra_directory.tenants.applications]]`).
    #[serde(default)]
    pub applications: Vec<Application>,
    /// Users (`[[entra_directory.tenants.users]]`).
    #[serde(default)]
    pub users: Vec<User>,
}

/// An application registration with its service principal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// The client (application) id, a GUID.
    pub client_id: String,
    /// Its client secret; without one it is a public client (password grant only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// The service principal's object id (the `oid` of its app-only tokens); derived from
    /// the tenant and client id when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// A display name (`app_displayname`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Whether its app-only tokens may be issued for the Identity API
    /// (`https://communication.azure.com/.default`), as if assigned a role on the resource.
    #[serde(default = "yes")]
    pub acs_access: bool,
}

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The sign-in name (`user@domain`).
    pub username: String,
    /// The password.
    pub password: Secret,
    /// The object id (a GUID), the `oid` of the user's tokens.
    pub object_id: String,
    /// A display name (`name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Whether tokens for the Teams scopes may be issued to the user (a Teams licence).
    #[serde(default = "yes")]
    pub teams_enabled: bool,
}

fn yes() -> bool {
    true
}

impl Directory {
    /// The development tenant with its application and user.
    pub fn dev_tenant() -> Tenant {
        Tenant {
            tenant_id: DEV_TENANT_ID.to_owned(),
            applications: vec![Application {
                client_id: DEV_CLIENT_ID.to_owned(),
                client_secret: Some(Secret::new(DEV_CLIENT_SECRET)),
                object_id: Some(DEV_APP_OBJECT_ID.to_owned()),
                display_name: Some("acs-identity development application".to_owned()),
                acs_access: true,
            }],
            users: vec![User {
                username: DEV_USERNAME.to_owned(),
                password: Secret::new(DEV_PASSWORD),
                object_id: DEV_USER_OBJECT_ID.to_owned(),
                display_name: Some("Development User".to_owned()),
                teams_enabled: true,
            }],
        }
    }

    /// The directory served: the development tenant first with `dev` (unless configured
    /// too), then the configured ones; ids in lower case.
    pub fn effective(&self, dev: bool) -> Directory {
        let mut tenants = Vec::new();
        if dev && !self.tenants.iter().any(|t| t.tenant_id.eq_ignore_ascii_case(DEV_TENANT_ID)) {
            tenants.push(Directory::dev_tenant());
        }
        tenants.extend(self.tenants.iter().cloned());
        for t in &mut tenants {
            t.tenant_id.make_ascii_lowercase();
            for a in &mut t.applications {
                a.client_id.make_ascii_lowercase();
                if let Some(o) = &mut a.object_id {
                    o.make_ascii_lowercase();
                }
            }
            for u in &mut t.users {
                u.object_id.make_ascii_lowercase();
            }
        }
        Directory { tenants }
    }

    /// Checks ids (GUIDs) and uniqueness.
    pub fn validate(&self) -> Result<(), String> {
        let guid = |what: &str, v: &str| {
            uuid::Uuid::parse_str(v)
                .map(|_| ())
                .map_err(|_| format!("entra_directory: {what} '{v}' is not a GUID"))
        };
        let mut tenants = std::collections::HashSet::new();
        let mut clients = std::collections::HashSet::new();
        for t in &self.tenants {
            guid("tenant_id", &t.tenant_id)?;
            if !tenants.insert(t.tenant_id.to_ascii_lowercase()) {
                return Err(format!("entra_directory: tenant {} is listed twice", t.tenant_id));
            }
            let mut users = std::collections::HashSet::new();
            for a in &t.applications {
                guid("client_id", &a.client_id)?;
                if let Some(o) = &a.object_id {
                    guid("object_id", o)?;
                }
                if a.client_secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
                    return Err(format!(
                        "entra_directory: application {} has an empty client_secret",
                        a.client_id
                    ));
                }
                if !clients.insert(a.client_id.to_ascii_lowercase()) {
                    return Err(format!(
                        "entra_directory: client_id {} is listed twice",
                        a.client_id
                    ));
                }
            }
            for u in &t.users {
                guid("object_id", &u.object_id)?;
                if !u.username.contains('@') {
                    return Err(format!(
                        "entra_directory: username '{}' is not of the form user@domain",
                        u.username
                    ));
                }
                if u.password.expose().is_empty() {
                    return Err(format!(
                        "entra_directory: user {} has an empty password",
                        u.username
                    ));
                }
                if !users.insert(u.username.to_ascii_lowercase()) {
                    return Err(format!("entra_directory: user {} is listed twice", u.username));
                }
            }
        }
        Ok(())
    }
}

impl Tenant {
    /// The application with `client_id` (any case).
    pub fn application(&self, client_id: &str) -> Option<&Application> {
        self.applications.iter().find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// The user signing in as `username` (any case).
    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username.eq_ignore_ascii_case(username))
    }
}

impl Application {
    /// The service principal's object id: configured, or derived from the tenant and client
    /// id so that it is the same on every start.
    pub fn service_principal_id(&self, tenant_id: &str) -> String {
        if let Some(o) = &self.object_id {
            return o.clone();
        }
        let hash = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            format!("{tenant_id}/{}", self.client_id).as_bytes(),
        );
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&hash.as_ref()[..16]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        let d = Directory::default().effective(true);
        let text = format!("{d:?}");
        assert!(!text.contains(DEV_CLIENT_SECRET) && !text.contains(DEV_PASSWORD), "{text}");
        assert!(text.contains(DEV_CLIENT_ID));
    }

    #[test]
    fn validation_catches_bad_ids_and_duplicates() {
        assert!(Directory { tenants: vec![Directory::dev_tenant()] }.validate().is_ok());
        let mut t = Directory::dev_tenant();
        t.tenant_id = "contoso".into();
        assert!(Directory { tenants: vec![t] }.validate().unwrap_err().contains("tenant_id"));
        let mut t = Directory::dev_tenant();
        t.users.push(t.users[0].clone());
        assert!(Directory { tenants: vec![t] }.validate().unwrap_err().contains("twice"));
        let t = Directory::dev_tenant();
        let mut other = Directory::dev_tenant();
        other.tenant_id = "ac5de7e1-0000-4000-8000-0000000000ff".into();
        assert!(Directory { tenants: vec![t, other] }
            .validate()
            .unwrap_err()
            .contains("client_id"));
    }

    #[test]
    fn derived_service_principal_ids_are_stable_guids() {
        let mut app = Directory::dev_tenant().applications.remove(0);
        app.object_id = None;
        let a = app.service_principal_id(DEV_TENANT_ID);
        assert_eq!(a, app.service_principal_id(DEV_TENANT_ID));
        assert_ne!(a, app.service_principal_id("ac5de7e1-0000-4000-8000-0000000000ff"));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }
}
