//! Test helpers (cargo feature `test-support`): a fresh PostgreSQL database per test on
//! the server named by `DATABASE_URL`, and throwaway PostgreSQL clusters that a test may
//! stop and start.
//!
//! A test that needs PostgreSQL lives in a test binary named `postgres` (`tests/postgres.rs`
//! or `tests/postgres/main.rs`); `cargo xtask test` reports those binaries' tests as skipped
//! when no server is reachable. Run without `DATABASE_URL`, such a test fails, saying so,
//! unless `ACSID_SKIP_POSTGRES_TESTS=1` lets it pass without running.
//!
//! Not for production code: helpers panic on failure.

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;
use uuid::Uuid;

/// The variable naming the PostgreSQL server tests use.
pub const DATABASE_URL_VAR: &str = "DATABASE_URL";

/// Set to `1` to let tests that need PostgreSQL pass without running when
/// [`DATABASE_URL_VAR`] is unset (they print a notice). Without it they fail.
pub const SKIP_POSTGRES_VAR: &str = "ACSID_SKIP_POSTGRES_TESTS";

/// The URL in `DATABASE_URL`. When it is unset, `test` fails with a message saying how to
/// give it a server, or, with [`SKIP_POSTGRES_VAR`]`=1`, this prints a notice and is `None`.
pub fn admin_url(test: &str) -> Option<String> {
    match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var(SKIP_POSTGRES_VAR).is_ok_and(|v| v == "1") => {
            eprintln!(
                "skipping {test}: {DATABASE_URL_VAR} is not set and {SKIP_POSTGRES_VAR}=1 (not run)"
            );
            None
        }
        _ => panic!("{}", missing_server_message(test)),
    }
}

fn missing_server_message(test: &str) -> String {
    format!(
        "{test} needs a PostgreSQL server and {DATABASE_URL_VAR} is not set. Set it \
         (e.g. {DATABASE_URL_VAR}=postgres://postgres@127.0.0.1:5432/test), or run the suite \
         with `cargo xtask test`, which uses a server on 127.0.0.1:5432 or reports these tests \
         as skipped (`cargo nextest run --profile no-postgres` does the same), or set \
         {SKIP_POSTGRES_VAR}=1 to let them pass without running"
    )
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// A database created for one test, named `acsid_test_<random>`.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a fresh, empty database on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> TestDatabase {
        let name = format!("acsid_test_{}", Uuid::new_v4().simple());
        let mut conn = admin_connection(admin_url).await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let _ = conn.close().await;
        let url = with_database(admin_url, &name);
        TestDatabase { admin_url: admin_url.to_owned(), name, url }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, disconnecting whoever is still connected.
    pub async fn drop_database(self) {
        let mut conn = admin_connection(&self.admin_url).await;
        if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .execute(&mut conn)
            .await
        {
            eprintln!("warning: cannot drop test database {}: {e}", self.name);
        }
        let _ = conn.close().await;
    }
}

async fn admin_connection(admin_url: &str) -> PgConnection {
    let options = PgConnectOptions::from_str(admin_url).expect("valid DATABASE_URL");
    PgConnection::connect_with(&options).await.unwrap_or_else(|e| {
        panic!("cannot connect to the PostgreSQL server of {DATABASE_URL_VAR}: {e}")
    })
}

/// Runs `body` with the URL of a fresh database on the server of `DATABASE_URL`, and drops
/// the database afterwards, also when `body` panics. Without `DATABASE_URL`, see
/// [`admin_url`].
pub async fn with_fresh_database<F, Fut>(test: &str, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(admin) = admin_url(test) else { return };
    let db = TestDatabase::create(&admin).await;
    let outcome = tokio::spawn(body(db.url().to_owned())).await;
    db.drop_database().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task failed: {e}"),
        }
    }
}

/// A private PostgreSQL cluster in a temporary directory, listening on 127.0.0.1 at an
/// ephemeral port, that a test may stop, kill and start. Stopped when dropped.
///
/// When the tests run as root, the cluster runs as the OS user `postgres` (PostgreSQL
/// refuses to run as root).
#[derive(Debug)]
pub struct Cluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    run_as: Option<String>,
}

impl Cluster {
    /// `initdb`s and starts a cluster with trust authentication for the user `postgres`.
    pub async fn start() -> Cluster {
        let bindir = pg_bindir().expect(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install postgresql or put pg_config on PATH",
        );
        let dir = tempfile::Builder::new().prefix("acsid-pg-").tempdir().expect("temp dir");
        let run_as = if running_as_root() { Some("postgres".to_owned()) } else { None };
        if let Some(user) = &run_as {
            let ok = StdCommand::new("chown")
                .arg(user)
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot chown the cluster directory to {user}");
        }
        let port = free_port();
        let cluster = Cluster { dir, bindir, port, run_as };
        cluster
            .run(
                "initdb",
                &[
                    "-D",
                    &cluster.data_dir(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
            )
            .await;
        cluster.start_again().await;
        cluster
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// The server log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Starts the (stopped) cluster and waits until it accepts connections.
    pub async fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on",
            self.port,
            self.dir.path().display()
        );
        let log = self.log_path().display().to_string();
        self.run("pg_ctl", &["-D", &self.data_dir(), "-o", &options, "-l", &log, "-w", "start"])
            .await;
    }

    /// Stops the cluster with `pg_ctl stop -m <mode>` (`smart`, `fast` or `immediate`).
    pub async fn stop(&self, mode: &str) {
        self.run("pg_ctl", &["-D", &self.data_dir(), "-m", mode, "-w", "stop"]).await;
    }

    async fn run(&self, program: &str, args: &[&str]) {
        let output = self.command(program, args).output().await.expect("run PostgreSQL tool");
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn command(&self, program: &str, args: &[&str]) -> tokio::process::Command {
        let bin = self.bindir.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = tokio::process::Command::new("runuser");
                c.args(["-u", user, "--"]).arg(bin);
                c
            }
            None => tokio::process::Command::new(bin),
        };
        cmd.args(args).current_dir(self.dir.path()).kill_on_drop(true);
        cmd
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let bin = self.bindir.join("pg_ctl");
        let data = self.data_dir();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = StdCommand::new("runuser");
                c.args(["-u", user, "--"]).arg(bin);
                c
            }
            None => StdCommand::new(bin),
        };
        let _ = cmd.args(args).output();
    }
}

fn running_as_root() -> bool {
    StdCommand::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// The directory of `initdb` and `pg_ctl`: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian does not put them on PATH).
pub fn pg_bindir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").exists() && dir.join("pg_ctl").exists();
    if let Ok(out) = StdCommand::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_tools(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_server_message_says_what_to_do() {
        let m = missing_server_message("some_test");
        for part in ["some_test", "DATABASE_URL", "cargo xtask test", "ACSID_SKIP_POSTGRES_TESTS=1"]
        {
            assert!(m.contains(part), "{part}: {m}");
        }
    }

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(with_database("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
    }
}
