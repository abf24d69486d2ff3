//! `acs-identity export` and `acs-identity import`: move a resource between stores, e.g.
//! from the SQLite file of a single node to the PostgreSQL database of several.
//!
//! The dump is JSON Lines: a header, the resource, its access and signing keys, the
//! Teams extension and Entra assignments, every identity (tombstones, custom ids and
//! revocation generations included), and an end line with the counts, so a truncated
//! dump is noticed. It holds the resource's secrets.
//!
//! Importing is idempotent: an identity already in the target is merged (the higher
//! generation wins, a deletion stays), so an interrupted import can simply be run again.
//! A target holding a different resource is refused before anything is written.

use acs_identity_core::clock::{Clock as _, SystemClock};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use acs_identity_core::hmac::KeyName;
use acs_identity_core::id::{parse_identity, ParsedIdentity, ResourceId};
use acs_identity_core::store::{
    AccessKeyRecord, EntraAssignment, IdentityRecord, ResourceRecord, ResourceState, SecretBytes,
    SigningKeyRecord, TeamsExtensionAssignment,
};
use acs_identity_core::token::SigningAlgorithm;
use acs_identity_store::{AnyStore, StoreLocation, Transfer};
use anyhow::{bail, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ConfigArgs;

/// The `format` of the header line.
const FORMAT: &str = "acs-identity-dump";
/// The dump format version this program writes and reads.
const VERSION: u32 = 1;
/// Rows per read or write.
const BATCH: u32 = 1000;

/// `acs-identity export`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    common: ConfigArgs,
    /// The database to read, as --database-url.
    #[arg(long, value_name = "URL", conflicts_with = "database_url")]
    from: Option<String>,
    /// Write the dump to this file (created with mode 0600) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// `acs-identity import`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    common: ConfigArgs,
    /// The database to write, as --database-url.
    #[arg(long, value_name = "URL", conflicts_with = "database_url")]
    to: Option<String>,
    /// Read the dump from this file instead of standard input.
    #[arg(long, short, value_name = "FILE")]
    input: Option<PathBuf>,
}

/// One line of a dump.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Line {
    Header(Header),
    Resource(ResourceLine),
    AccessKey(AccessKeyLine),
    SigningKey(SigningKeyLine),
    TeamsExtensionAssignment(TeamsLine),
    EntraAssignment(EntraLine),
    Identity(IdentityLine),
    End(Counts),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    format: String,
    version: u32,
    #[serde(with = "time::serde::rfc3339")]
    exported_at: OffsetDateTime,
    schema_version: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceLine {
    resource_id: String,
    data_location: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccessKeyLine {
    name: String,
    /// Base64.
    key: String,
    version: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SigningKeyLine {
    kid: String,
    alg: String,
    /// PKCS#8 DER, base64.
    pkcs8: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TeamsLine {
    tenant_id: String,
    object_id: String,
    principal_type: String,
    client_ids: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntraLine {
    object_id: String,
    tenant_id: String,
    principal_type: String,
    client_ids: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityLine {
    /// The raw id, `8:acs:<resource>_<user>`, as clients know it.
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    custom_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    deleted_at: Option<OffsetDateTime>,
    generation: u64,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    last_token_issued_at: Option<OffsetDateTime>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Counts {
    access_keys: u64,
    signing_keys: u64,
    teams_extension_assignments: u64,
    entra_assignments: u64,
    identities: u64,
    deleted_identities: u64,
}

/// The store named by `--from`/`--to`, or else as every store command names it
/// (`--database-url`, `ACSID_DATABASE_URL`, the configuration file, the SQLite file in the
/// data directory).
fn location(common: &ConfigArgs, database_url: Option<&str>) -> anyhow::Result<StoreLocation> {
    let overrides = match database_url {
        Some(url) => serde_json::json!({ "database_url": url }),
        None => serde_json::json!({}),
    };
    crate::serve::load_config(common, &overrides)?.store_location()
}

/// Opens the store at `location`; with `must_exist`, a missing SQLite file is an error
/// instead of a new empty database.
pub(crate) async fn open(location: &StoreLocation, must_exist: bool) -> anyhow::Result<AnyStore> {
    if let StoreLocation::Sqlite(path) = location {
        if must_exist && !path.exists() {
            bail!("no database at {}", path.display());
        }
    }
    AnyStore::open(location).await.with_context(|| format!("cannot open the {location}"))
}

pub(crate) async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let location = location(&args.common, args.from.as_deref())?;
    let store = open(&location, true).await?;
    let result = match &args.output {
        Some(path) => {
            let file = create_private(path)?;
            let mut out = BufWriter::new(file);
            let counts = write_dump(&store, &mut out).await?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            Ok(counts)
        }
        None => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            let counts = write_dump(&store, &mut out).await;
            out.flush()?;
            counts
        }
    };
    store.close().await;
    let counts = result?;
    eprintln!(
        "exported from the {location}: {} identities ({} deleted), {} signing keys, {} assignments. \
         The dump holds the resource's access and signing keys: keep it secret.",
        counts.identities,
        counts.deleted_identities,
        counts.signing_keys,
        counts.teams_extension_assignments + counts.entra_assignments
    );
    Ok(())
}

#[cfg(unix)]
fn create_private(path: &Path) -> anyhow::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> anyhow::Result<File> {
    File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

fn write_line(out: &mut impl Write, line: &Line) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")?;
    Ok(())
}

async fn write_dump(store: &AnyStore, out: &mut impl Write) -> anyhow::Result<Counts> {
    let shared = store.shared();
    let state = shared
        .load_resource()
        .await?
        .context("the database holds no resource: nothing to export")?;
    let mut counts = Counts::default();
    write_line(
        out,
        &Line::Header(Header {
            format: FORMAT.to_owned(),
            version: VERSION,
            exported_at: SystemClock.now(),
            schema_version: store.schema_version().await?,
        }),
    )?;
    write_line(
        out,
        &Line::Resource(ResourceLine {
            resource_id: state.resource.resource_id.to_string(),
            data_location: state.resource.data_location.clone(),
            created_at: state.resource.created_at,
        }),
    )?;
    for k in &state.access_keys {
        counts.access_keys += 1;
        write_line(
            out,
            &Line::AccessKey(AccessKeyLine {
                name: k.name.as_str().to_owned(),
                key: STANDARD.encode(&k.key.0),
                version: k.version,
            }),
        )?;
    }
    for k in &state.signing_keys {
        counts.signing_keys += 1;
        write_line(
            out,
            &Line::SigningKey(SigningKeyLine {
                kid: k.kid.clone(),
                alg: k.alg.as_str().to_owned(),
                pkcs8: STANDARD.encode(&k.pkcs8.0),
                created_at: k.created_at,
            }),
        )?;
    }
    let mut after = None;
    loop {
        let page = store.teams_extension_assignments_after(after.take(), BATCH).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.tenant_id.clone(), last.object_id.clone()));
        for a in page {
            counts.teams_extension_assignments += 1;
            write_line(
                out,
                &Line::TeamsExtensionAssignment(TeamsLine {
                    tenant_id: a.tenant_id,
                    object_id: a.object_id,
                    principal_type: a.principal_type,
                    client_ids: a.client_ids,
                }),
            )?;
        }
    }
    let mut after: Option<String> = None;
    loop {
        let page = shared.list_entra_assignments(after.as_deref(), BATCH).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.object_id.clone());
        for a in page {
            counts.entra_assignments += 1;
            write_line(
                out,
                &Line::EntraAssignment(EntraLine {
                    object_id: a.object_id,
                    tenant_id: a.tenant_id,
                    principal_type: a.principal_type,
                    client_ids: a.client_ids,
                }),
            )?;
        }
    }
    let mut after = None;
    loop {
        let page = store.identities_after(after, BATCH).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.user);
        for r in page {
            counts.identities += 1;
            counts.deleted_identities += u64::from(!r.is_live());
            write_line(
                out,
                &Line::Identity(IdentityLine {
                    id: r.user.raw_id(state.resource.resource_id),
                    custom_id: r.custom_id,
                    created_at: r.created_at,
                    deleted_at: r.deleted_at,
                    generation: r.generation,
                    last_token_issued_at: r.last_token_issued_at,
                }),
            )?;
        }
    }
    write_line(out, &Line::End(counts.clone()))?;
    Ok(counts)
}

pub(crate) async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let location = location(&args.common, args.to.as_deref())?;
    let input: Box<dyn BufRead> = match &args.input {
        Some(path) => Box::new(BufReader::new(
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(BufReader::new(std::io::stdin())),
    };
    let store = open(&location, false).await?;
    let result = read_dump(&store, input).await;
    store.close().await;
    let (resource, counts) = result?;
    eprintln!(
        "imported resource {resource} into the {location}: {} identities ({} deleted), \
         {} signing keys, {} assignments",
        counts.identities,
        counts.deleted_identities,
        counts.signing_keys,
        counts.teams_extension_assignments + counts.entra_assignments
    );
    Ok(())
}

/// What the reader has seen so far.
#[derive(Default)]
struct Reader {
    resource: Option<ResourceRecord>,
    access_keys: Vec<AccessKeyRecord>,
    signing_keys: Vec<SigningKeyRecord>,
    imported: Option<ResourceId>,
    identities: Vec<IdentityRecord>,
    entra: Vec<(String, Option<EntraAssignment>)>,
    counts: Counts,
}

impl Reader {
    /// Imports the resource and keys once every line about them was read.
    async fn resource(&mut self, store: &AnyStore) -> anyhow::Result<()> {
        if self.imported.is_some() {
            return Ok(());
        }
        let resource = self.resource.take().context("the dump has no resource line")?;
        let id = resource.resource_id;
        let state = ResourceState {
            resource,
            access_keys: std::mem::take(&mut self.access_keys),
            signing_keys: std::mem::take(&mut self.signing_keys),
        };
        store.import_resource(&state).await?;
        self.imported = Some(id);
        Ok(())
    }

    async fn flush(&mut self, store: &AnyStore) -> anyhow::Result<()> {
        if !self.entra.is_empty() {
            store.shared().update_entra_assignments(std::mem::take(&mut self.entra)).await?;
        }
        if !self.identities.is_empty() {
            store.import_identities(&self.identities).await?;
            self.identities.clear();
        }
        Ok(())
    }
}

async fn read_dump(
    store: &AnyStore,
    input: Box<dyn BufRead>,
) -> anyhow::Result<(ResourceId, Counts)> {
    let mut r = Reader::default();
    let mut header = false;
    let mut end = None;
    for (n, line) in input.lines().enumerate() {
        let n = n + 1;
        let line = line.context("cannot read the dump")?;
        if line.trim().is_empty() {
            continue;
        }
        if end.is_some() {
            bail!("line {n}: data after the end line");
        }
        let parsed: Line =
            serde_json::from_str(&line).with_context(|| format!("line {n}: not a dump line"))?;
        match parsed {
            Line::Header(h) => {
                if header || n != 1 {
                    bail!("line {n}: a header must be the first line, once");
                }
                if h.format != FORMAT || h.version != VERSION {
                    bail!(
                        "line {n}: not a version {VERSION} {FORMAT} (format {:?}, version {})",
                        h.format,
                        h.version
                    );
                }
                header = true;
            }
            _ if !header => bail!("line {n}: the dump must start with a header line"),
            Line::Resource(l) if r.resource.is_none() && r.imported.is_none() => {
                r.resource = Some(ResourceRecord {
                    resource_id: ResourceId::from_str(&l.resource_id)
                        .map_err(|e| anyhow::anyhow!("line {n}: bad resource id: {e}"))?,
                    data_location: l.data_location,
                    created_at: l.created_at,
                });
            }
            Line::Resource(_) => bail!("line {n}: a second resource"),
            Line::AccessKey(l) if r.imported.is_none() => {
                r.counts.access_keys += 1;
                r.access_keys.push(AccessKeyRecord {
                    name: match l.name.as_str() {
                        "primary" => KeyName::Primary,
                        "secondary" => KeyName::Secondary,
                        other => bail!("line {n}: unknown access key {other:?}"),
                    },
                    key: SecretBytes(STANDARD.decode(&l.key).with_context(|| format!("line {n}"))?),
                    version: l.version,
                });
            }
            Line::SigningKey(l) if r.imported.is_none() => {
                r.counts.signing_keys += 1;
                r.signing_keys.push(SigningKeyRecord {
                    kid: l.kid,
                    alg: SigningAlgorithm::from_str(&l.alg)
                        .map_err(|e| anyhow::anyhow!("line {n}: {e}"))?,
                    pkcs8: SecretBytes(
                        STANDARD.decode(&l.pkcs8).with_context(|| format!("line {n}"))?,
                    ),
                    created_at: l.created_at,
                });
            }
            Line::AccessKey(_) | Line::SigningKey(_) => {
                bail!("line {n}: keys must come before assignments and identities")
            }
            Line::TeamsExtensionAssignment(l) => {
                r.resource(store).await?;
                r.counts.teams_extension_assignments += 1;
                store
                    .shared()
                    .put_teams_extension_assignment(TeamsExtensionAssignment {
                        tenant_id: l.tenant_id,
                        object_id: l.object_id,
                        principal_type: l.principal_type,
                        client_ids: l.client_ids,
                    })
                    .await?;
            }
            Line::EntraAssignment(l) => {
                r.resource(store).await?;
                r.counts.entra_assignments += 1;
                r.entra.push((
                    l.object_id.clone(),
                    Some(EntraAssignment {
                        object_id: l.object_id,
                        tenant_id: l.tenant_id,
                        principal_type: l.principal_type,
                        client_ids: l.client_ids,
                    }),
                ));
                if r.entra.len() >= BATCH as usize {
                    r.flush(store).await?;
                }
            }
            Line::Identity(l) => {
                r.resource(store).await?;
                let resource = r.imported.context("resource imported")?;
                let ParsedIdentity::Ours(user) = parse_identity(&l.id, resource) else {
                    bail!("line {n}: {} is not a user of resource {resource}", l.id);
                };
                r.counts.identities += 1;
                r.counts.deleted_identities += u64::from(l.deleted_at.is_some());
                r.identities.push(IdentityRecord {
                    user,
                    custom_id: l.custom_id,
                    created_at: l.created_at,
                    deleted_at: l.deleted_at,
                    generation: l.generation,
                    last_token_issued_at: l.last_token_issued_at,
                });
                if r.identities.len() >= BATCH as usize {
                    r.flush(store).await?;
                }
            }
            Line::End(counts) => end = Some(counts),
        }
    }
    if !header {
        bail!("the dump is empty");
    }
    r.resource(store).await?;
    r.flush(store).await?;
    let Some(expected) = end else {
        bail!(
            "the dump is truncated (no end line); what it held was imported: \
             run the import again with a complete dump"
        );
    };
    if expected != r.counts {
        bail!("the dump's end line counts {expected:?}, but it held {:?}", r.counts);
    }
    let id = r.imported.context("the dump has no resource line")?;
    Ok((id, r.counts))
}
