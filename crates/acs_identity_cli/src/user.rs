//! `acs-identity user ...`: create, show and delete users.

use acs_identity_core::clock::{Clock as _, SystemClock};
use std::path::PathBuf;

use acs_identity::models::{
    CommunicationIdentityClientCreateUserAndTokenOptions,
    CommunicationIdentityClientCreateUserOptions, CommunicationIdentityClientListUsersOptions,
    CommunicationTokenScope, ListedUser,
};
use acs_identity::{CommunicationIdentityClient, CommunicationUserIdentifier};
use azure_core::time::{Duration, OffsetDateTime};
use serde::Serialize;

use crate::bulk::{self, BulkPlan};
use crate::connection::{api_error, model, ClientArgs, Needs};
use crate::output::{print_json, print_table, relative, rfc3339, Output};

/// `acs-identity user`: the shared client flags and a subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct UserArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: UserCommand,
}

/// The `user` subcommands.
#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Create a user, optionally with a first token; or many users with --count.
    Create(CreateArgs),
    /// Show a user's custom id and when it last got a token (api-version 2025-03-02-preview).
    Show {
        /// The user's raw id, `8:acs:<resource id>_<user id>`.
        id: String,
    },
    /// List the users, newest first, deleted ones included (an acs-identity extension; Azure
    /// has no list).
    List {
        /// Show at most this many users.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
        /// Users per request, 1 to 1000 [default: the service's, 100].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        page_size: Option<u32>,
    },
    /// Delete a user and revoke all its tokens.
    Delete {
        /// The user's raw id.
        id: String,
    },
}

/// Flags of `user create`.
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// Also issue a token with these scopes: chat, voip, chat.join, chat.join.limited,
    /// voip.join.
    #[arg(long, value_delimiter = ',', value_name = "SCOPES", num_args = 1..)]
    pub(crate) scopes: Vec<String>,
    /// Lifetime of the token in minutes, 60 to 1440 [default: 1440].
    #[arg(
        long,
        value_name = "MIN",
        requires = "scopes",
        value_parser = clap::value_parser!(u16).range(60..=1440)
    )]
    pub(crate) expires_in: Option<u16>,
    /// Your own id for the user; creating the same custom id again returns the same user
    /// (api-version 2025-03-02-preview).
    #[arg(long, value_name = "ID", conflicts_with = "count")]
    custom_id: Option<String>,
    /// Create this many users, printing one JSON line per user as each is created.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// With --count: how many requests to keep in flight.
    #[arg(
        long,
        value_name = "C",
        requires = "count",
        default_value_t = 8,
        value_parser = clap::value_parser!(u16).range(1..=256)
    )]
    concurrency: u16,
    /// With --count: write the JSON lines to FILE instead of stdout.
    #[arg(long, value_name = "FILE", requires = "count")]
    out: Option<PathBuf>,
}

impl CreateArgs {
    /// The scopes as the client's type.
    pub(crate) fn token_scopes(&self) -> Vec<CommunicationTokenScope> {
        self.scopes.iter().map(|s| CommunicationTokenScope::from(s.trim())).collect()
    }

    /// `--expires-in` as a duration.
    pub(crate) fn token_lifetime(&self) -> Option<Duration> {
        self.expires_in.map(|minutes| Duration::minutes(i64::from(minutes)))
    }
}

/// A created user as printed: also the JSON line of `user create --count`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreatedUser {
    /// The raw id.
    pub(crate) id: String,
    /// The custom id given on creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) custom_id: Option<String>,
    /// The first token, when scopes were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) token: Option<String>,
    /// The token's expiry (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expires_on: Option<String>,
    /// The token's expiry, for the table.
    #[serde(skip)]
    pub(crate) expires_at: Option<OffsetDateTime>,
}

/// Runs a `user` subcommand.
pub(crate) async fn run(args: UserArgs) -> anyhow::Result<()> {
    let UserArgs { client: client_args, command } = args;
    match command {
        UserCommand::Create(create) => {
            if let Some(count) = create.count {
                let client = client_args.client(Needs::Stable)?;
                let plan = BulkPlan {
                    count,
                    concurrency: create.concurrency,
                    user: NewUser::from(&create),
                    out: create.out.clone(),
                };
                return bulk::run(client, plan).await;
            }
            let needs = if create.custom_id.is_some() { Needs::Preview } else { Needs::Stable };
            let client = client_args.client(needs)?;
            let user = create_one(&client, &NewUser::from(&create)).await?;
            print_created(&user, client_args.output)
        }
        UserCommand::Show { id } => {
            let client = client_args.client(Needs::Preview)?;
            show(&client, &id, client_args.output).await
        }
        UserCommand::List { limit, page_size } => {
            let client = client_args.client(Needs::Stable)?;
            list(&client, limit, page_size, client_args.output).await
        }
        UserCommand::Delete { id } => {
            let client = client_args.client(Needs::Stable)?;
            let user = CommunicationUserIdentifier::new(id);
            client.delete_user(&user, None).await.map_err(|e| api_error(e, "delete the user"))?;
            match client_args.output {
                Output::Json => print_json(&serde_json::json!({ "id": user.id, "deleted": true })),
                Output::Table => print_table(&[("deleted", user.id)]),
            }
        }
    }
}

/// What to create: one user, with a token when `scopes` is not empty.
#[derive(Clone, Debug, Default)]
pub(crate) struct NewUser {
    /// Token scopes; no token when empty.
    pub(crate) scopes: Vec<CommunicationTokenScope>,
    /// Token lifetime.
    pub(crate) expires_in: Option<Duration>,
    /// A custom id (2025-03-02-preview).
    pub(crate) custom_id: Option<String>,
}

impl From<&CreateArgs> for NewUser {
    fn from(args: &CreateArgs) -> Self {
        NewUser {
            scopes: args.token_scopes(),
            expires_in: args.token_lifetime(),
            custom_id: args.custom_id.clone(),
        }
    }
}

/// Creates one user, with a token when scopes were given: the one create path of single and
/// bulk creation.
pub(crate) async fn create_one(
    client: &CommunicationIdentityClient,
    new: &NewUser,
) -> anyhow::Result<CreatedUser> {
    if new.scopes.is_empty() {
        let options = CommunicationIdentityClientCreateUserOptions {
            custom_id: new.custom_id.clone(),
            ..Default::default()
        };
        let user = model(client.create_user(Some(options)).await, "create the user")?;
        return Ok(CreatedUser {
            id: user.id,
            custom_id: new.custom_id.clone(),
            token: None,
            expires_on: None,
            expires_at: None,
        });
    }
    let options = CommunicationIdentityClientCreateUserAndTokenOptions {
        expires_in: new.expires_in,
        custom_id: new.custom_id.clone(),
        ..Default::default()
    };
    let created =
        model(client.create_user_and_token(&new.scopes, Some(options)).await, "create the user")?;
    Ok(CreatedUser {
        id: created.user.id,
        custom_id: new.custom_id.clone(),
        token: Some(created.access_token.token.secret().to_owned()),
        expires_on: Some(rfc3339(created.access_token.expires_on)),
        expires_at: Some(created.access_token.expires_on),
    })
}

fn print_created(user: &CreatedUser, output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        return print_json(user);
    }
    let mut rows = vec![("id", user.id.clone())];
    if let Some(custom_id) = &user.custom_id {
        rows.push(("custom id", custom_id.clone()));
    }
    if let (Some(token), Some(expires_at)) = (&user.token, user.expires_at) {
        rows.push(("token", token.clone()));
        rows.push(("expires on", with_relative(expires_at)));
    }
    print_table(&rows)
}

async fn show(
    client: &CommunicationIdentityClient,
    id: &str,
    output: Output,
) -> anyhow::Result<()> {
    let user = CommunicationUserIdentifier::new(id);
    let detail = model(client.get_user_detail(&user, None).await, "read the user")?;
    let last_token = detail.last_token_issued_at.map(rfc3339);
    match output {
        Output::Json => print_json(&serde_json::json!({
            "id": detail.user.id,
            "customId": detail.custom_id,
            "lastTokenIssuedAt": last_token,
        })),
        Output::Table => {
            let last_token =
                detail.last_token_issued_at.map_or_else(|| "never".to_owned(), with_relative);
            print_table(&[
                ("id", detail.user.id),
                ("custom id", detail.custom_id.unwrap_or_else(|| "-".to_owned())),
                ("last token issued", last_token),
            ])
        }
    }
}

/// `2026-01-31T16:05:09Z (in 23h 59m)`.
pub(crate) fn with_relative(at: OffsetDateTime) -> String {
    format!("{} ({})", rfc3339(at), relative(at, SystemClock.now()))
}

/// `user list`: up to `limit` users, newest first.
async fn list(
    client: &CommunicationIdentityClient,
    limit: usize,
    page_size: Option<u32>,
    output: Output,
) -> anyhow::Result<()> {
    use futures::TryStreamExt;
    let options = CommunicationIdentityClientListUsersOptions {
        max_page_size: page_size.or(u32::try_from(limit).ok().filter(|n| (1..=1000).contains(n))),
        ..Default::default()
    };
    let mut pager = client.list_users(Some(options)).map_err(|e| api_error(e, "list the users"))?;
    let mut users: Vec<ListedUser> = Vec::new();
    while users.len() < limit {
        match pager.try_next().await.map_err(|e| api_error(e, "list the users"))? {
            Some(user) => users.push(user),
            None => break,
        }
    }
    match output {
        Output::Json => print_json(
            &users
                .iter()
                .map(|u| {
                    serde_json::json!({
                        "id": u.id,
                        "customId": u.custom_id,
                        "createdAt": rfc3339(u.created_at),
                        "lastTokenIssuedAt": u.last_token_issued_at.map(rfc3339),
                        "deletedAt": u.deleted_at.map(rfc3339),
                        "state": u.state.to_string(),
                        "generation": u.generation,
                    })
                })
                .collect::<Vec<_>>(),
        ),
        Output::Table => {
            let rows: Vec<(&str, String)> = users
                .iter()
                .map(|u| {
                    let mut text = format!("{}, created {}", u.state, rfc3339(u.created_at));
                    if let Some(at) = u.last_token_issued_at {
                        text.push_str(&format!(", last token {}", rfc3339(at)));
                    }
                    if let Some(custom) = &u.custom_id {
                        text.push_str(&format!(", custom id {custom}"));
                    }
                    (u.id.as_str(), text)
                })
                .collect();
            print_table(&rows)?;
            print_table(&[("users", users.len().to_string())])
        }
    }
}
