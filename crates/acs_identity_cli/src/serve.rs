//! `acs-identity serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use acs_identity_core::token::SigningAlgorithm;
use std::io::{IsTerminal as _, Write as _};

use acs_identity_server::config::{unknown_env_vars, IssuerConfig, LogFormat, OutputFormat};
use acs_identity_server::serve::Server;
use acs_identity_server::Config;
use anyhow::Context as _;
use figment::providers::Serialized;
use serde::Serialize;
use tracing_subscriber::EnvFilter;

use crate::ConfigArgs;

/// Flags of `serve`; each overrides the file and the environment.
#[derive(Debug, clap::Args, Serialize)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    #[serde(skip)]
    pub(crate) common: ConfigArgs,
    /// HTTPS listen address [default: 127.0.0.1:8443; env: ACSID_LISTEN].
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// Also serve plain HTTP on this address [env: ACSID_HTTP_LISTEN].
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    http_listen: Option<SocketAddr>,
    /// Keep Prometheus metrics and serve `GET /metrics`: true or false [default: true;
    /// env: ACSID_METRICS].
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<bool>,
    /// Serve `GET /metrics` on this plain-HTTP address only, not on the API listeners
    /// [env: ACSID_METRICS_LISTEN].
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<SocketAddr>,
    /// Run the built-in Entra ID authority on this HTTPS address; the service trusts its
    /// tokens [env: ACSID_ENTRA_LISTEN].
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    entra_listen: Option<SocketAddr>,
    /// Run an HTTP CONNECT proxy here that answers for login.microsoftonline.com with the
    /// built-in Entra authority (HTTPS_PROXY for unmodified code); needs --entra-listen
    /// [env: ACSID_ENTRA_PROXY_LISTEN].
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    entra_proxy_listen: Option<SocketAddr>,
    /// Serve this certificate chain (PEM) instead of the development certificate.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<PathBuf>,
    /// Data location of a new resource [default: unitedstates].
    #[arg(long, value_name = "NAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_location: Option<String>,
    /// Token signing algorithm: ES256, RS256 or EdDSA [default: ES256].
    #[arg(long, value_name = "ALG")]
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_alg: Option<SigningAlgorithm>,
    /// Trust an Entra/OpenID issuer: `ISSUER=JWKS`, where JWKS is a file or an https URL
    /// (repeatable; added to `[[entra.issuers]]` of the configuration file).
    #[arg(long = "trust-issuer", value_name = "ISSUER=JWKS")]
    #[serde(skip)]
    trust_issuers: Vec<IssuerConfig>,
    /// Origins whose pages may call the service from a browser (CORS), comma-separated:
    /// `*` any, `''` none [default: *; env: ACSID_CORS_ALLOWED_ORIGINS].
    #[arg(long, value_name = "ORIGINS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    cors_allowed_origins: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
    /// Keep everything in memory (the development CA in a temporary directory removed at
    /// exit); nothing is written to the data directory [env: ACSID_IN_MEMORY].
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    in_memory: bool,
    /// Serve the well-known development resource and keys (see the README); loopback
    /// listeners only [env: ACSID_DEV].
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dev: bool,
    /// Serve an unknown api-version as the newest one known [env: ACSID_SKIP_API_VERSION_CHECK].
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    skip_api_version_check: bool,
    /// What to print on stdout: `text` (a banner) or `json` (one ready line, nothing else)
    /// [default: text; env: ACSID_OUTPUT].
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    /// Write the ready JSON object to this file (atomically) once serving; removed at exit
    /// [env: ACSID_READY_FILE].
    #[arg(long, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    ready_file: Option<PathBuf>,
    /// Print the connection string (the primary key) in the banner even when standard
    /// output is not a terminal, for a harness that reads it. Without it, the banner shows
    /// the key only on a terminal (or with --dev, whose key is public).
    #[arg(long)]
    #[serde(skip)]
    print_connection_string: bool,
}

/// Loads the layered configuration with `overrides` (flags) on top.
pub(crate) fn load_config<T: Serialize>(
    common: &ConfigArgs,
    overrides: &T,
) -> anyhow::Result<Config> {
    let mut f = Config::figment(common.config.as_deref()).merge(Serialized::defaults(overrides));
    if let Some(dir) = &common.data_dir {
        f = f.merge(Serialized::default("data_dir", dir));
    }
    if let Some(url) = &common.database_url {
        f = f.merge(Serialized::default("database_url", url));
    }
    Config::from_figment(&f)
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("ACSID_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: a file, a pipe or a log shipper gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = load_config(&args.common, &args)?;
    config.entra.issuers.extend(args.trust_issuers.iter().cloned());
    init_logging(config.log_format);
    for var in unknown_env_vars() {
        tracing::warn!(variable = %var, "unknown configuration variable ignored");
    }
    let shutdown = shutdown_signal()?;
    let server = Server::start(&config).await?;
    let ready = ready_line(&server);
    if let Some(path) = &config.ready_file {
        write_atomically(path, &format!("{ready}\n"))
            .with_context(|| format!("cannot write the ready file {}", path.display()))?;
    }
    match config.output {
        OutputFormat::Text => {
            // On a terminal a person reads it; elsewhere stdout is often a log.
            let show_key =
                args.print_connection_string || config.dev || std::io::stdout().is_terminal();
            print_banner(&server, &config, show_key);
        }
        OutputFormat::Json => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{ready}")?;
            out.flush()?;
        }
    }
    // In memory, nothing goes to the data directory; `keys list` has nothing to read anyway.
    let endpoint_file = (!config.in_memory).then(|| endpoint_file(&config.data_dir));
    if let Some(file) = &endpoint_file {
        if let Err(e) = write_atomically(file, &format!("{}\n", server.endpoint())) {
            tracing::warn!(error = %e, "cannot record the endpoint for `keys list`");
        }
    }
    tracing::info!(endpoint = %server.endpoint(), http = ?server.http_addr(), "serving");
    shutdown.await;
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown().await;
    for file in endpoint_file.iter().chain(&config.ready_file) {
        let _ = std::fs::remove_file(file);
    }
    tracing::info!("stopped");
    Ok(())
}

/// The one JSON object `--output json` prints and `--ready-file` holds: what a program needs
/// to use the service, with the ports actually bound.
fn ready_line(server: &Server) -> String {
    let ca =
        server.ca_path().map(|ca| std::fs::canonicalize(ca).unwrap_or_else(|_| ca.to_path_buf()));
    serde_json::json!({
        "event": "ready",
        "endpoint": server.endpoint(),
        "httpEndpoint": server.http_endpoint(),
        "connectionString": server.connection_string(),
        "caFile": ca,
        "entra": server.entra_authority().map(|a| a.ready_info()),
        "metricsEndpoint": server.metrics_addr().map(|a| format!("http://{a}")),
        "pid": std::process::id(),
    })
    .to_string()
}

/// Where a running service records the HTTPS endpoint it bound, for `keys list`.
pub(crate) fn endpoint_file(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("endpoint")
}

/// Writes `contents` to a temporary file beside `path` and renames it over `path`, so a
/// reader sees the whole file or none.
fn write_atomically(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(tmp, path)
}

/// The banner; with `show_key`, the connection string and the console link (both carry
/// the primary key), else how to get them.
fn print_banner(server: &Server, config: &Config, show_key: bool) {
    let mut out = String::new();
    out.push_str(&format!("acs-identity is serving at {}\n", server.endpoint()));
    if let Some(http) = server.http_endpoint() {
        out.push_str(&format!("plain HTTP at {http}\n"));
    }
    out.push_str(&format!("resource id: {}\n\n", server.state().resource()));
    if !show_key {
        out.push_str(&key_hint(config));
        if let Some(ca) = server.ca_path() {
            let ca = std::fs::canonicalize(ca).unwrap_or_else(|_| ca.to_path_buf());
            out.push_str(&format!("\nThe development CA for clients: {}\n", ca.display()));
        }
        out.push_str(&authority_lines(server, config.dev));
        println!("{out}");
        return;
    }
    if config.dev {
        out.push_str("Connection string (the well-known development key; never use it beyond this machine):\n");
    } else {
        out.push_str("Connection string (primary key):\n");
    }
    out.push_str(&format!("  {}\n", server.connection_string()));
    out.push_str(
        "\nWeb console (the key stays in the browser: it is in the fragment, never sent):\n",
    );
    out.push_str(&format!("  {}\n", server.console_link()));
    if let Some(http) = server.http_endpoint().filter(|_| {
        server.http_addr().is_some_and(|a| a.ip().is_loopback() || a.ip().is_unspecified())
    }) {
        // Loopback HTTP is a secure context for WebCrypto: no certificate to trust.
        let link = server.console_link();
        let fragment = link.split_once('#').map_or("", |(_, f)| f);
        out.push_str(&format!(
            "  {http}/console/#{fragment}   (plain HTTP, no certificate to trust)\n"
        ));
    }
    if let Some(ca) = server.ca_path() {
        let ca = std::fs::canonicalize(ca).unwrap_or_else(|_| ca.to_path_buf());
        out.push_str("\nTrust the development CA in clients:\n");
        out.push_str(&format!(
            "  export SSL_CERT_FILE={}        # Rust (rustls-native-certs), OpenSSL\n",
            ca.display()
        ));
        out.push_str(&format!(
            "  export REQUESTS_CA_BUNDLE={}   # Python (requests)\n",
            ca.display()
        ));
        out.push_str(&format!("  export NODE_EXTRA_CA_CERTS={}  # Node.js\n", ca.display()));
    }
    out.push_str(&format!(
        "\n  export COMMUNICATION_SERVICES_CONNECTION_STRING=\"{}\"\n",
        server.connection_string()
    ));
    out.push_str(&authority_lines(server, config.dev));
    println!("{out}");
}

/// The Entra ID authority's part of the banner, if it runs (its client secret only with
/// `--dev`, where it is public).
fn authority_lines(server: &Server, dev: bool) -> String {
    let mut out = String::new();
    if let Some(authority) = server.entra_authority() {
        let info = authority.ready_info();
        let text = |k: &str| info[k].as_str().unwrap_or_default().to_owned();
        out.push_str(&format!(
            "\nEntra ID authority at {} (DefaultAzureCredential without instance discovery):\n",
            authority.base()
        ));
        out.push_str(&format!("  export AZURE_AUTHORITY_HOST={}\n", authority.base()));
        out.push_str(&format!("  export AZURE_TENANT_ID={}\n", text("tenantId")));
        out.push_str(&format!("  export AZURE_CLIENT_ID={}\n", text("clientId")));
        if dev {
            out.push_str(&format!("  export AZURE_CLIENT_SECRET={}\n", text("clientSecret")));
        }
        if let Some(proxy) = authority.proxy() {
            out.push_str(&format!(
                "  # or, for unmodified code, instead of AZURE_AUTHORITY_HOST (Entra's hosts answered here):\n  export HTTPS_PROXY={proxy}\n"
            ));
        }
    }
    out
}

/// Where to get the connection string when the banner does not show it.
fn key_hint(config: &Config) -> String {
    let why = "The connection string is not shown: standard output is not a terminal, so it \
               may be a log (--print-connection-string shows it anyway).";
    if config.in_memory {
        return format!(
            "{why}\nThe store is in memory: start with --print-connection-string or --output json to get it.\n"
        );
    }
    let store = match &config.database_url {
        Some(_) => " --database-url <the same URL>".to_owned(),
        None => format!(" --data-dir {}", config.data_dir.display()),
    };
    format!("{why}\nPrint it (and the web console's link) with:\n  acs-identity keys list{store}\n")
}

/// Registers the SIGINT and SIGTERM handlers at once and returns what waits for either.
/// Called before the service says it is ready, so a signal sent right after the ready line
/// shuts down gracefully instead of killing the process with the default action.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {},
                _ = interrupt.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
