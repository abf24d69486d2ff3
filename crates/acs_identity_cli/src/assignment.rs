//! `acs-identity assignment ...`: who may exchange an Entra token for a Communication Services
//! token (Teams Phone extensibility and Entra user access).

use acs_identity::models::{
    CommunicationIdentityClientListEntraAssignmentsOptions, EntraAssignment,
    EntraAssignmentChanges, EntraAssignmentRequest, EntraPrincipalType, TeamsExtensionAssignment,
    TeamsExtensionAssignmentRequest, TeamsExtensionPrincipalType,
};
use anyhow::Context as _;
use futures::TryStreamExt as _;
use serde_json::{json, Value};

use crate::connection::{api_error, model, ClientArgs, Needs};
use crate::output::{print_json, print_table, Output};

/// `acs-identity assignment`: the shared client flags and a subcommand.
#[derive(Debug, clap::Args)]
pub(crate) struct AssignmentArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: AssignmentCommand,
}

/// The two kinds of assignment.
#[derive(Debug, clap::Subcommand)]
enum AssignmentCommand {
    /// Teams Phone extensibility: Teams users and resource accounts (api-version
    /// 2025-03-02-preview, 2025-06-30 and later).
    #[command(subcommand, name = "teams-extension")]
    TeamsExtension(TeamsExtensionCommand),
    /// Entra user access: users, groups and tenants (api-version 2025-03-02-preview).
    #[command(subcommand)]
    Entra(EntraCommand),
}

/// `assignment teams-extension` subcommands.
#[derive(Debug, clap::Subcommand)]
enum TeamsExtensionCommand {
    /// Show the assignment of a user or resource account.
    Show {
        /// The Entra tenant id.
        tenant_id: String,
        /// The Entra object id of the user or resource account.
        object_id: String,
    },
    /// Create or replace the assignment of a user or resource account.
    Set {
        /// The Entra tenant id.
        tenant_id: String,
        /// The Entra object id of the user or resource account.
        object_id: String,
        /// What the principal is: user or resourceAccount.
        #[arg(long, value_name = "TYPE", value_parser = ["user", "resourceAccount"])]
        principal_type: String,
        /// Only tokens of these client (application) ids may be exchanged [default: any].
        #[arg(long, value_delimiter = ',', value_name = "IDS", num_args = 1..)]
        client_ids: Option<Vec<String>>,
    },
    /// Delete the assignment of a user or resource account.
    Delete {
        /// The Entra tenant id.
        tenant_id: String,
        /// The Entra object id of the user or resource account.
        object_id: String,
    },
}

/// `assignment entra` subcommands.
#[derive(Debug, clap::Subcommand)]
enum EntraCommand {
    /// List every assignment, following the service's pages.
    List {
        /// Assignments per request, 1 to 1000 [default: the service's, 100].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        page_size: Option<u32>,
    },
    /// Show the assignment of a user, group or tenant.
    Show {
        /// The object id of the user or group, or the tenant id.
        object_id: String,
    },
    /// Create or replace the assignment of a user, group or tenant.
    Set {
        /// The object id of the user or group, or the tenant id.
        object_id: String,
        /// The Entra tenant id.
        #[arg(long, value_name = "ID")]
        tenant_id: String,
        /// What the principal is: user, group or tenant.
        #[arg(long, value_name = "TYPE", value_parser = ["user", "group", "tenant"])]
        principal_type: String,
        /// The client (application) ids whose tokens may be exchanged.
        #[arg(long, required = true, value_delimiter = ',', value_name = "IDS", num_args = 1..)]
        client_ids: Vec<String>,
    },
    /// Delete the assignment of a user, group or tenant.
    Delete {
        /// The object id of the user or group, or the tenant id.
        object_id: String,
    },
    /// Apply several changes at once, all or none: a JSON object mapping object ids to
    /// `{"tenantId", "principalType", "clientIds"}` (create or replace) or `null` (remove).
    Apply {
        /// The JSON file; `-` reads stdin.
        file: String,
    },
}

/// Runs an `assignment` subcommand.
pub(crate) async fn run(args: AssignmentArgs) -> anyhow::Result<()> {
    let AssignmentArgs { client: client_args, command } = args;
    let output = client_args.output;
    match command {
        AssignmentCommand::TeamsExtension(command) => {
            let client = client_args.client(Needs::Stable)?;
            match command {
                TeamsExtensionCommand::Show { tenant_id, object_id } => {
                    let assignment = model(
                        client.get_teams_extension_assignment(&tenant_id, &object_id, None).await,
                        "read the assignment",
                    )?;
                    print_assignment(teams_json(&assignment), output)
                }
                TeamsExtensionCommand::Set { tenant_id, object_id, principal_type, client_ids } => {
                    let request = TeamsExtensionAssignmentRequest::new(
                        TeamsExtensionPrincipalType::from(principal_type),
                        client_ids,
                    );
                    let assignment = model(
                        client
                            .create_or_replace_teams_extension_assignment(
                                &tenant_id, &object_id, &request, None,
                            )
                            .await,
                        "set the assignment",
                    )?;
                    print_assignment(teams_json(&assignment), output)
                }
                TeamsExtensionCommand::Delete { tenant_id, object_id } => {
                    client
                        .delete_teams_extension_assignment(&tenant_id, &object_id, None)
                        .await
                        .map_err(|e| api_error(e, "delete the assignment"))?;
                    print_deleted(&object_id, output)
                }
            }
        }
        AssignmentCommand::Entra(command) => {
            let client = client_args.client(Needs::Preview)?;
            match command {
                EntraCommand::List { page_size } => {
                    let options = CommunicationIdentityClientListEntraAssignmentsOptions {
                        max_page_size: page_size,
                        ..Default::default()
                    };
                    let assignments: Vec<EntraAssignment> = client
                        .list_entra_assignments(Some(options))
                        .map_err(|e| api_error(e, "list the assignments"))?
                        .try_collect()
                        .await
                        .map_err(|e| api_error(e, "list the assignments"))?;
                    print_entra_list(&assignments, output)
                }
                EntraCommand::Show { object_id } => {
                    let assignment = model(
                        client.get_entra_assignment(&object_id, None).await,
                        "read the assignment",
                    )?;
                    print_assignment(entra_json(&assignment), output)
                }
                EntraCommand::Set { object_id, tenant_id, principal_type, client_ids } => {
                    let request = EntraAssignmentRequest::new(
                        tenant_id,
                        EntraPrincipalType::from(principal_type),
                        client_ids,
                    );
                    let assignment = model(
                        client.create_or_replace_entra_assignment(&object_id, &request, None).await,
                        "set the assignment",
                    )?;
                    print_assignment(entra_json(&assignment), output)
                }
                EntraCommand::Delete { object_id } => {
                    client
                        .delete_entra_assignment(&object_id, None)
                        .await
                        .map_err(|e| api_error(e, "delete the assignment"))?;
                    print_deleted(&object_id, output)
                }
                EntraCommand::Apply { file } => {
                    let changes = read_changes(&file)?;
                    let upserted = client
                        .update_entra_assignments(&changes, None)
                        .await
                        .map_err(|e| api_error(e, "apply the changes"))?;
                    let removed = changes.values().filter(|c| c.is_none()).count();
                    match output {
                        Output::Json => print_json(&json!({
                            "upserted": upserted.iter().map(entra_json).collect::<Vec<_>>(),
                            "removed": removed,
                        })),
                        Output::Table => print_table(&[
                            ("created or replaced", upserted.len().to_string()),
                            ("removed", removed.to_string()),
                        ]),
                    }
                }
            }
        }
    }
}

/// Reads the changes of `assignment entra apply` from `file` (or stdin for `-`).
fn read_changes(file: &str) -> anyhow::Result<EntraAssignmentChanges> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read the changes from stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
    };
    parse_changes(&text).with_context(|| format!("{file} is not a valid set of changes"))
}

fn parse_changes(text: &str) -> anyhow::Result<EntraAssignmentChanges> {
    let Value::Object(map) = serde_json::from_str::<Value>(text)? else {
        anyhow::bail!("expected a JSON object of object id → assignment or null");
    };
    let mut changes = EntraAssignmentChanges::new();
    for (object_id, change) in map {
        let change = match change {
            Value::Null => None,
            Value::Object(fields) => {
                let text = |name: &str| {
                    fields
                        .get(name)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .with_context(|| format!("{object_id}: {name} must be a string"))
                };
                let client_ids = fields
                    .get("clientIds")
                    .and_then(Value::as_array)
                    .and_then(|ids| {
                        ids.iter().map(|id| id.as_str().map(str::to_owned)).collect::<Option<_>>()
                    })
                    .with_context(|| format!("{object_id}: clientIds must be a list of strings"))?;
                Some(EntraAssignmentRequest::new(
                    text("tenantId")?,
                    EntraPrincipalType::from(text("principalType")?),
                    client_ids,
                ))
            }
            _ => anyhow::bail!("{object_id}: expected an assignment object or null"),
        };
        changes.insert(object_id, change);
    }
    if changes.is_empty() {
        anyhow::bail!("no changes");
    }
    Ok(changes)
}

fn teams_json(a: &TeamsExtensionAssignment) -> Value {
    json!({
        "objectId": a.object_id,
        "tenantId": a.tenant_id,
        "principalType": a.principal_type.as_str(),
        "clientIds": a.client_ids,
    })
}

fn entra_json(a: &EntraAssignment) -> Value {
    json!({
        "objectId": a.object_id,
        "tenantId": a.tenant_id,
        "principalType": a.principal_type.as_str(),
        "clientIds": a.client_ids,
    })
}

/// One assignment of either kind, from its JSON form ([`teams_json`], [`entra_json`]): that
/// JSON, or a table of its fields (`any` for a Teams assignment without client ids).
fn print_assignment(json: Value, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => print_json(&json),
        Output::Table => {
            let text = |key: &str| json[key].as_str().unwrap_or_default().to_owned();
            let client_ids = match json["clientIds"].as_array() {
                Some(ids) => ids.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "),
                None => "any".to_owned(),
            };
            print_table(&[
                ("object id", text("objectId")),
                ("tenant id", text("tenantId")),
                ("principal type", text("principalType")),
                ("client ids", client_ids),
            ])
        }
    }
}

fn print_entra_list(assignments: &[EntraAssignment], output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => print_json(&assignments.iter().map(entra_json).collect::<Vec<_>>()),
        Output::Table => {
            let rows: Vec<(&str, String)> = assignments
                .iter()
                .map(|a| {
                    (
                        a.object_id.as_str(),
                        format!(
                            "{} in {}, clients {}",
                            a.principal_type,
                            a.tenant_id,
                            a.client_ids.join(", ")
                        ),
                    )
                })
                .collect();
            print_table(&rows)?;
            print_table(&[("assignments", assignments.len().to_string())])
        }
    }
}

fn print_deleted(object_id: &str, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => print_json(&json!({ "objectId": object_id, "deleted": true })),
        Output::Table => print_table(&[("deleted the assignment of", object_id.to_owned())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_parse_upserts_and_removals() {
        let changes = parse_changes(
            r#"{"a":{"tenantId":"t","principalType":"group","clientIds":["c1","c2"]},"b":null}"#,
        )
        .unwrap();
        assert_eq!(changes.len(), 2);
        let a = changes["a"].as_ref().unwrap();
        assert_eq!((a.tenant_id.as_str(), &a.principal_type), ("t", &EntraPrincipalType::Group));
        assert_eq!(a.client_ids, ["c1", "c2"]);
        assert!(changes["b"].is_none());
    }

    #[test]
    fn changes_name_what_is_wrong() {
        for (text, expected) in [
            ("[]", "expected a JSON object"),
            ("{}", "no changes"),
            (r#"{"a":1}"#, "a: expected an assignment object or null"),
            (r#"{"a":{"principalType":"user","clientIds":[]}}"#, "a: tenantId must be a string"),
            (r#"{"a":{"tenantId":"t","principalType":"user","clientIds":[1]}}"#, "a: clientIds"),
        ] {
            let error = format!("{:#}", parse_changes(text).unwrap_err());
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert!(parse_changes("not json").is_err());
    }
}
