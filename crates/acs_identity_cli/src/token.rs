//! `acs-identity token ...`: issue, revoke, exchange, decode and verify access tokens.

use acs_identity::models::{
    CommunicationAccessToken, CommunicationIdentityClientGetTokenOptions, CommunicationTokenScope,
    GetTokenForTeamsUserOptions,
};
use acs_identity::CommunicationUserIdentifier;
use acs_identity_core::clock::{Clock as _, SystemClock};
use anyhow::Context as _;
use azure_core::time::{Duration, OffsetDateTime};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use time::UtcOffset;

use crate::connection::{api_error, model, ClientArgs, Needs};
use crate::output::{local, print_json, print_table, relative, rfc3339, Output};
use crate::user::with_relative;
use crate::Exit;

/// `acs-identity token`: the shared client flags and a subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: TokenCommand,
}

/// The `token` subcommands.
#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Issue a token for an existing user.
    Issue {
        /// The user's raw id, `8:acs:<resource id>_<user id>`.
        id: String,
        /// Scopes of the token: chat, voip, chat.join, chat.join.limited, voip.join.
        #[arg(long, required = true, value_delimiter = ',', value_name = "SCOPES", num_args = 1..)]
        scopes: Vec<String>,
        /// Lifetime in minutes, 60 to 1440 [default: 1440].
        #[arg(long, value_name = "MIN", value_parser = clap::value_parser!(u16).range(60..=1440))]
        expires_in: Option<u16>,
    },
    /// Revoke every token issued to a user so far.
    Revoke {
        /// The user's raw id.
        id: String,
    },
    /// Show a token's header, claims and expiry, offline (the signature is not checked).
    Decode {
        /// The token; `-` reads it from stdin.
        token: String,
    },
    /// Exchange a Teams user's Entra ID token for a Communication Services token (api-version
    /// 2022-06-01 or later).
    #[command(name = "exchange-teams")]
    ExchangeTeams {
        /// The Teams user's Entra ID access token; `-` reads it from stdin.
        #[arg(long, value_name = "TOKEN")]
        token: String,
        /// The client (application) id of the Entra application; must match the token's appid.
        #[arg(long, value_name = "ID")]
        app_id: String,
        /// The Entra object id of the user; must match the token's oid.
        #[arg(long, value_name = "ID")]
        user_id: String,
    },
    /// Ask the service whether a token is valid (an acs-identity extension; Azure has no such
    /// operation). Exits with 0 when it is, 1 when it is not.
    Verify {
        /// The token; `-` reads it from stdin.
        token: String,
    },
}

/// Runs a `token` subcommand; `local_offset` is the machine's UTC offset, for `decode`.
pub(crate) async fn run(args: TokenArgs, local_offset: UtcOffset) -> anyhow::Result<()> {
    let TokenArgs { client: client_args, command } = args;
    let output = client_args.output;
    match command {
        TokenCommand::Issue { id, scopes, expires_in } => {
            let client = client_args.client(Needs::Stable)?;
            let user = CommunicationUserIdentifier::new(id);
            let scopes: Vec<_> =
                scopes.iter().map(|s| CommunicationTokenScope::from(s.trim())).collect();
            let options = CommunicationIdentityClientGetTokenOptions {
                expires_in: expires_in.map(|m| Duration::minutes(i64::from(m))),
                ..Default::default()
            };
            let token =
                model(client.get_token(&user, &scopes, Some(options)).await, "issue the token")?;
            print_token(Some(&user.id), &token, output)
        }
        TokenCommand::Revoke { id } => {
            let client = client_args.client(Needs::Stable)?;
            let user = CommunicationUserIdentifier::new(id);
            client
                .revoke_tokens(&user, None)
                .await
                .map_err(|e| api_error(e, "revoke the tokens"))?;
            match output {
                Output::Json => print_json(&json!({ "id": user.id, "revoked": true })),
                Output::Table => print_table(&[("revoked all tokens of", user.id)]),
            }
        }
        TokenCommand::ExchangeTeams { token, app_id, user_id } => {
            let client = client_args.client(Needs::Stable)?;
            let parameters = GetTokenForTeamsUserOptions::new(read_token(token)?, app_id, user_id);
            let token = model(
                client.get_token_for_teams_user(&parameters, None).await,
                "exchange the token",
            )?;
            print_token(None, &token, output)
        }
        TokenCommand::Decode { token } => {
            let token = read_token(token)?;
            let decoded = Decoded::parse(&token)?;
            decoded.print(output, local_offset, SystemClock.now())
        }
        TokenCommand::Verify { token } => {
            let token = read_token(token)?;
            let client = client_args.client(Needs::Stable)?;
            let verdict = model(client.validate_token(&token, None).await, "verify the token")?;
            let scopes: Vec<&str> =
                verdict.scopes.iter().map(CommunicationTokenScope::as_str).collect();
            let user = verdict.user.as_ref().map(|u| u.id.as_str());
            match output {
                Output::Json => print_json(&json!({
                    "valid": verdict.valid,
                    "id": user,
                    "scopes": scopes,
                    "expiresOn": verdict.expires_on.map(rfc3339),
                    "reason": verdict.reason,
                }))?,
                Output::Table if verdict.valid => print_table(&[
                    ("valid", "yes".to_owned()),
                    ("user", user.unwrap_or("-").to_owned()),
                    ("scopes", scopes.join(", ")),
                    (
                        "expires on",
                        verdict.expires_on.map_or_else(|| "-".to_owned(), with_relative),
                    ),
                ])?,
                Output::Table => print_table(&[
                    ("valid", "no".to_owned()),
                    ("reason", verdict.reason.unwrap_or_else(|| "-".to_owned())),
                ])?,
            }
            if verdict.valid {
                Ok(())
            } else {
                Err(Exit(1).into())
            }
        }
    }
}

/// The token argument, or stdin for `-`.
/// Prints an issued or exchanged token and its expiry, after the user's id when there is one.
fn print_token(
    id: Option<&str>,
    token: &CommunicationAccessToken,
    output: Output,
) -> anyhow::Result<()> {
    match output {
        Output::Json => {
            let mut fields = Map::new();
            if let Some(id) = id {
                fields.insert("id".to_owned(), json!(id));
            }
            fields.insert("token".to_owned(), json!(token.token.secret()));
            fields.insert("expiresOn".to_owned(), json!(rfc3339(token.expires_on)));
            print_json(&Value::Object(fields))
        }
        Output::Table => print_table(&[
            ("token", token.token.secret().to_owned()),
            ("expires on", with_relative(token.expires_on)),
        ]),
    }
}

fn read_token(arg: String) -> anyhow::Result<String> {
    let token = if arg == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read the token from stdin")?
    } else {
        arg
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        anyhow::bail!("the token is empty");
    }
    Ok(token)
}

/// A JWT's header and claims, decoded without checking the signature.
#[derive(Debug)]
struct Decoded {
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl Decoded {
    /// Splits and decodes a compact JWS; accepts base64url and standard base64, padded or not.
    fn parse(token: &str) -> anyhow::Result<Decoded> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, claims, _signature] = parts[..] else {
            anyhow::bail!("not a JWT: expected three dot-separated parts, got {}", parts.len());
        };
        Ok(Decoded {
            header: decode_part(header).context("not a JWT: bad header")?,
            claims: decode_part(claims).context("not a JWT: bad claims")?,
        })
    }

    /// A numeric-date claim (seconds since the epoch).
    fn time_claim(&self, name: &str) -> Option<OffsetDateTime> {
        let seconds = self.claims.get(name)?.as_i64()?;
        OffsetDateTime::from_unix_timestamp(seconds).ok()
    }

    /// The raw id of the token's user: `8:` + the `skypeid` claim.
    fn user(&self) -> Option<String> {
        self.claims.get("skypeid")?.as_str().map(|id| format!("8:{id}"))
    }

    /// The `acsScope` claim, split.
    fn scopes(&self) -> Vec<String> {
        let scopes = self.claims.get("acsScope").and_then(Value::as_str).unwrap_or_default();
        scopes.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()
    }

    fn print(&self, output: Output, offset: UtcOffset, now: OffsetDateTime) -> anyhow::Result<()> {
        let issued_at = self.time_claim("iat");
        let expires_on = self.time_claim("exp");
        if output == Output::Json {
            return print_json(&json!({
                "header": self.header,
                "claims": self.claims,
                "user": self.user(),
                "scopes": self.scopes(),
                "issuedAt": issued_at.map(rfc3339),
                "expiresOn": expires_on.map(rfc3339),
                "expired": expires_on.map(|exp| exp <= now),
            }));
        }
        let mut rows: Vec<(&str, String)> = Vec::new();
        rows.push(("user", self.user().unwrap_or_else(|| "-".to_owned())));
        rows.push(("scopes", self.scopes().join(", ")));
        if let Some(at) = issued_at {
            rows.push(("issued at", local(at, offset)));
        }
        match expires_on {
            Some(exp) if exp <= now => {
                rows.push((
                    "expires",
                    format!("{} (expired {})", local(exp, offset), relative(exp, now)),
                ));
            }
            Some(exp) => {
                let remaining = relative(exp, now);
                rows.push(("expires", format!("{} (expires {remaining})", local(exp, offset))));
            }
            None => rows.push(("expires", "- (no exp claim)".to_owned())),
        }
        rows.push((
            "signature",
            "not checked (`acs-identity token verify` asks the service)".to_owned(),
        ));
        for (name, value) in &self.header {
            rows.push(("header", format!("{name}: {}", compact(value))));
        }
        for (name, value) in &self.claims {
            rows.push(("claim", format!("{name}: {}", compact(value))));
        }
        print_table(&rows)
    }
}

/// A JSON value on one line, strings without quotes.
fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn decode_part(part: &str) -> anyhow::Result<Map<String, Value>> {
    let normalized: String = part
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(normalized)
        .context("not base64url")?;
    serde_json::from_slice(&bytes).context("not a JSON object")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn encode(value: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    }

    #[test]
    fn decodes_header_and_claims() {
        let token = format!(
            "{}.{}.c2ln",
            encode(&json!({"alg": "ES256", "kid": "k1", "typ": "JWT"})),
            encode(
                &json!({"skypeid": "acs:r_u", "acsScope": "chat,voip", "exp": 1_800_000_000, "iat": 1_799_996_400})
            )
        );
        let decoded = Decoded::parse(&token).unwrap();
        assert_eq!(decoded.header["kid"], "k1");
        assert_eq!(decoded.user().as_deref(), Some("8:acs:r_u"));
        assert_eq!(decoded.scopes(), ["chat", "voip"]);
        let exp = decoded.time_claim("exp").unwrap();
        assert_eq!(exp, datetime!(2027-01-15 08:00 UTC));
        assert_eq!(relative(exp, datetime!(2027-01-15 07:00 UTC)), "in 1h 0m");
    }

    #[test]
    fn accepts_standard_base64_and_padding() {
        let claims = base64::engine::general_purpose::STANDARD.encode(r#"{"a":"??>>"}"#);
        assert!(claims.contains('/') || claims.contains('+') || claims.ends_with('='), "{claims}");
        let token = format!("{}.{claims}.x", encode(&json!({"alg": "none"})));
        assert_eq!(Decoded::parse(&token).unwrap().claims["a"], "??>>");
    }

    #[test]
    fn rejects_what_is_not_a_jwt() {
        assert!(Decoded::parse("abc").unwrap_err().to_string().contains("three"));
        let error = format!("{:#}", Decoded::parse("a.b.c").unwrap_err());
        assert!(error.contains("bad header"), "{error}");
        let error =
            format!("{:#}", Decoded::parse(&format!("{}.W10.x", encode(&json!({})))).unwrap_err());
        assert!(error.contains("bad claims"), "{error}");
    }
}
