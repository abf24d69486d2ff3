//! `acs-identity keys ...`.

use acs_identity_core::hmac::KeyName;
use std::time::Duration;

use acs_identity_server::audit::AdminAudit;
use acs_identity_server::key_sync::{self, DEFAULT_WAIT};
use acs_identity_server::serve::endpoint;
use acs_identity_server::state::{connection_string, console_link};
use acs_identity_store::AnyStore;
use anyhow::Context as _;
use base64::Engine as _;
use serde::Serialize;

use crate::{ConfigArgs, Exit};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Print the primary and secondary connection strings.
    List {
        #[command(flatten)]
        common: ConfigArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Replace an access key with a new random one. Once this returns, every running node
    /// refuses requests signed with the old key, and tokens issued through it stop
    /// validating. Prints the new connection string.
    Regenerate {
        /// Which key.
        #[arg(value_enum)]
        which: Which,
        #[command(flatten)]
        common: ConfigArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

/// How long a key change waits for the running nodes.
#[derive(Debug, clap::Args)]
pub(crate) struct WaitArgs {
    /// With PostgreSQL: wait at most this many seconds for every running node to hold the
    /// new keys; when some have not, say which and exit with code 1 (the change is made
    /// either way). SQLite nodes check the keys before every request.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_WAIT.as_secs())]
    wait_timeout: u64,
}

/// After a change to the keys: waits for the nodes; `Err(Exit(1))` when some did not
/// confirm, after saying which.
async fn await_nodes(store: &AnyStore, wait: &WaitArgs, what: &str) -> anyhow::Result<()> {
    let waited = key_sync::await_nodes(store, Duration::from_secs(wait.wait_timeout))
        .await
        .with_context(|| format!("{what}, but the running nodes could not be checked"))?;
    if waited.lagging.is_empty() {
        return Ok(());
    }
    eprintln!(
        "warning: {what}, but {} running node(s) did not confirm it within {} s: {}. A node \
         that cannot confirm refuses requests once its key lease ({} s) runs out.",
        waited.lagging.len(),
        wait.wait_timeout,
        waited.lagging.join(", "),
        key_sync::KEY_LEASE.as_secs()
    );
    Err(Exit(1).into())
}

/// An access key.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Which {
    Primary,
    Secondary,
}

/// `acs-identity signing-keys ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SigningKeysCommand {
    /// Add a new token signing key (of the configured `signing_alg`). New tokens are signed
    /// with it; tokens signed with the previous key verify until they expire, and the JWKS
    /// lists both.
    Rotate {
        #[command(flatten)]
        common: ConfigArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

async fn open_store(
    common: &ConfigArgs,
) -> anyhow::Result<(acs_identity_server::Config, AnyStore)> {
    let config = crate::serve::load_config(common, &serde_json::json!({}))?;
    if config.database_url.is_none() && !config.database_path().exists() {
        anyhow::bail!(
            "no resource in {}: start the service once with `acs-identity serve` to create it",
            config.data_dir.display()
        );
    }
    let store = AnyStore::open(&config.store_location()?).await.context("cannot open the store")?;
    Ok((config, store))
}

fn endpoint_of(config: &acs_identity_server::Config) -> String {
    // A running service records the endpoint it actually bound (it may listen on port 0).
    std::fs::read_to_string(crate::serve::endpoint_file(&config.data_dir))
        .ok()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| endpoint("https", config.listen))
}

/// `signing-keys rotate`.
pub(crate) async fn run_signing(cmd: SigningKeysCommand) -> anyhow::Result<()> {
    let SigningKeysCommand::Rotate { common, wait } = cmd;
    let (config, store) = open_store(&common).await?;
    let mut audit = AdminAudit::open(&config.audit_log)?;
    let now = acs_identity_core::Clock::now(&acs_identity_core::SystemClock);
    let rec = acs_identity_server::state::new_signing_key(config.signing_alg, now)?;
    let kid = rec.kid.clone();
    store.shared().add_signing_key(rec).await?;
    let waited = await_nodes(&store, &wait, &format!("signing key {kid} was added")).await;
    store.close().await;
    println!("new {} signing key {kid}", config.signing_alg);
    audit
        .record("signing_key.rotate", &kid, now)
        .with_context(|| format!("signing key {kid} was added, but"))?;
    waited
}

async fn regenerate(which: Which, common: ConfigArgs, wait: WaitArgs) -> anyhow::Result<()> {
    let (config, store) = open_store(&common).await?;
    let mut audit = AdminAudit::open(&config.audit_log)?;
    let (name, target) = match which {
        Which::Primary => (KeyName::Primary, "primary"),
        Which::Secondary => (KeyName::Secondary, "secondary"),
    };
    let rec = store
        .shared()
        .regenerate_access_key(name, acs_identity_server::state::random_key()?)
        .await?;
    let waited = await_nodes(&store, &wait, &format!("the {target} key was regenerated")).await;
    store.close().await;
    let key = base64::engine::general_purpose::STANDARD.encode(&rec.key.0);
    println!("{}", connection_string(&endpoint_of(&config), &key));
    let now = acs_identity_core::Clock::now(&acs_identity_core::SystemClock);
    audit
        .record("access_key.regenerate", target, now)
        .with_context(|| format!("the {target} key was regenerated, but"))?;
    waited
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Output {
    Table,
    Json,
}

#[derive(Serialize)]
struct KeyView {
    name: &'static str,
    key: String,
    #[serde(rename = "connectionString")]
    connection_string: String,
    /// The web console with this key in the fragment.
    #[serde(rename = "consoleLink")]
    console_link: String,
}

#[derive(Serialize)]
struct KeysView {
    #[serde(rename = "resourceId")]
    resource_id: String,
    endpoint: String,
    keys: Vec<KeyView>,
}

pub(crate) async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    let (common, output) = match cmd {
        KeysCommand::List { common, output } => (common, output),
        KeysCommand::Regenerate { which, common, wait } => {
            return regenerate(which, common, wait).await
        }
    };
    let (config, store) = open_store(&common).await?;
    let state = store.shared().load_resource().await?.context("the store holds no resource yet")?;
    store.close().await;
    let endpoint = endpoint_of(&config);
    let mut keys = Vec::new();
    for name in [KeyName::Primary, KeyName::Secondary] {
        let Some(rec) = state.access_keys.iter().find(|k| k.name == name) else { continue };
        let key = base64::engine::general_purpose::STANDARD.encode(&rec.key.0);
        keys.push(KeyView {
            name: name.as_str(),
            connection_string: connection_string(&endpoint, &key),
            console_link: console_link(&endpoint, &key),
            key,
        });
    }
    let view = KeysView { resource_id: state.resource.resource_id.to_string(), endpoint, keys };
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&view)?),
        Output::Table => {
            println!("resource id: {}", view.resource_id);
            println!("endpoint:    {}", view.endpoint);
            for k in &view.keys {
                println!("{:<10} {}", k.name, k.connection_string);
            }
            for k in &view.keys {
                println!("{:<10} console: {}", k.name, k.console_link);
            }
        }
    }
    Ok(())
}
