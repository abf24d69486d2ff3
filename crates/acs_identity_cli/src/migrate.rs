//! `acs-identity migrate`: applies the store's pending migrations and reports the schema
//! version. `serve` migrates on start as well; this lets a deployment migrate a shared
//! PostgreSQL database once, before rolling out nodes.

use crate::ConfigArgs;

/// `acs-identity migrate`.
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    common: ConfigArgs,
}

pub(crate) async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let location =
        crate::serve::load_config(&args.common, &serde_json::json!({}))?.store_location()?;
    let store = crate::transfer::open(&location, false).await?;
    let version = store.schema_version().await;
    let known = store.known_schema_version();
    store.close().await;
    println!("{location}: schema version {} (the newest this program knows: {known})", version?);
    Ok(())
}
