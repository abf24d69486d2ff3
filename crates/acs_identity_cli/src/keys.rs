//! `acs-identity keys ...`.

use acs_identity_core::hmac::KeyName;
use acs_identity_server::serve::endpoint;
use acs_identity_server::state::connection_string;
use acs_identity_store::AnyStore;
use anyhow::Context as _;
use base64::Engine as _;
use serde::Serialize;

use crate::ConfigArgs;

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
}

#[derive(Serialize)]
struct KeysView {
    #[serde(rename = "resourceId")]
    resource_id: String,
    endpoint: String,
    keys: Vec<KeyView>,
}

pub(crate) async fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    let KeysCommand::List { common, output } = cmd;
    let config = crate::serve::load_config(&common, &serde_json::json!({}))?;
    let location = config.store_location()?;
    if config.database_url.is_none() && !config.database_path().exists() {
        anyhow::bail!(
            "no resource in {}: start the service once with `acs-identity serve` to create it",
            config.data_dir.display()
        );
    }
    let store = AnyStore::open(&location).await.context("cannot open the store")?;
    let state = store.shared().load_resource().await?.context("the store holds no resource yet")?;
    store.close().await;
    // A running service records the endpoint it actually bound (it may listen on port 0).
    let endpoint = std::fs::read_to_string(crate::serve::endpoint_file(&config.data_dir))
        .ok()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| endpoint("https", config.listen));
    let mut keys = Vec::new();
    for name in [KeyName::Primary, KeyName::Secondary] {
        let Some(rec) = state.access_keys.iter().find(|k| k.name == name) else { continue };
        let key = base64::engine::general_purpose::STANDARD.encode(&rec.key.0);
        keys.push(KeyView {
            name: name.as_str(),
            connection_string: connection_string(&endpoint, &key),
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
        }
    }
    Ok(())
}
