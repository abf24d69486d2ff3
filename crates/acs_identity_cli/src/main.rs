//! `acs-identity`: the self-hosted ACS Identity service and its command line.

mod assignment;
mod bulk;
mod connection;
mod keys;
mod migrate;
mod output;
mod serve;
mod token;
mod transfer;
mod user;

use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

/// Azure Communication Services Identity, self-hosted.
#[derive(Debug, Parser)]
#[command(name = "acs-identity", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service.
    Serve(Box<serve::ServeArgs>),
    /// Show the resource's access keys and connection strings.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Rotate the token signing key.
    #[command(subcommand, name = "signing-keys")]
    SigningKeys(keys::SigningKeysCommand),
    /// Apply pending database migrations and print the schema version.
    Migrate(migrate::MigrateArgs),
    /// Write the resource, its keys, assignments and identities as JSON Lines.
    Export(transfer::ExportArgs),
    /// Read a dump written by `export` into a database (refuses another resource).
    Import(transfer::ImportArgs),
    /// Create, show and delete users of a running service.
    User(user::UserArgs),
    /// Issue, revoke, exchange, decode and verify access tokens.
    Token(token::TokenArgs),
    /// Manage who may exchange Entra ID tokens (Teams Phone extensibility, Entra user access).
    Assignment(assignment::AssignmentArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Ends the program with this exit code; the command has already said why.
#[derive(Debug)]
pub(crate) struct Exit(pub(crate) u8);

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// Where the store is, for every command that opens it (`serve`, `keys`, `signing-keys`,
/// `migrate`, `export`, `import`). Each flag overrides `ACSID_*`, which overrides the
/// configuration file, which overrides the default.
#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "ACSID_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Data directory [default: ./acs-identity-data; env: ACSID_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// The database: postgres://… (shared by every node of the resource) or sqlite:PATH,
    /// instead of the SQLite file in --data-dir [env: ACSID_DATABASE_URL].
    #[arg(long, value_name = "URL")]
    pub(crate) database_url: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Read while the process has one thread: `time` refuses to read the offset later.
    let local_offset = output::local_offset();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Keys(cmd) => keys::run(cmd).await,
            Command::SigningKeys(cmd) => keys::run_signing(cmd).await,
            Command::Migrate(args) => migrate::run(args).await,
            Command::Export(args) => transfer::export(args).await,
            Command::Import(args) => transfer::import(args).await,
            Command::User(args) => user::run(args).await,
            Command::Token(args) => token::run(args, local_offset).await,
            Command::Assignment(args) => assignment::run(args).await,
            Command::Completions { shell } => completions(shell),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Writes the completion script for `shell` to stdout.
fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    clap_complete::generate(shell, &mut Cli::command(), "acs-identity", &mut stdout);
    stdout.flush()?;
    Ok(())
}
