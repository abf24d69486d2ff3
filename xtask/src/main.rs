//! Project automation.
//!
//! `cargo xtask test` installs what the test suite needs (the official Python SDK in a
//! virtualenv under `target/`, the official JS SDK under `tests/compat/js` and, bundled for
//! the browser with esbuild and playwright-core, under `tests/browser`) and runs every test
//! of the workspace. `.ci/run` calls exactly this (and installs Chromium and certutil).
//!
//! `cargo xtask dist` builds the release binary and packs it as a Python wheel and an npm
//! package in `target/dist/` (`dist.rs`).
//!
//! `cargo xtask bench` builds the release server and load generator and runs the
//! benchmarks of BENCHMARKS.md (see `bench.rs` for its options). `cargo xtask client-bench`
//! measures the clients' CPU time per call (`client_bench.rs`). `cargo xtask fuzz` runs
//! every fuzz target for a fixed time or number of executions and keeps the inputs that
//! added coverage (`fuzz.rs`).

mod bench;
mod client_bench;
mod dist;
mod fuzz;
mod postgres;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context as _};

use crate::postgres::Postgres;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("compat-setup") => compat_setup().map(|_| ()),
        Some("bench") => bench::bench(&args[1..]),
        Some("client-bench") => client_bench::client_bench(&args[1..]),
        Some("dist") => dist::dist(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <test|compat-setup|bench|client-bench|dist|fuzz> [-- extra nextest, bench or fuzz args]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The cargo that runs xtask (`CARGO`), or `cargo` from `PATH`.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// `cargo build --release <args>` in the workspace.
fn build_release(root: &Path, args: &[&str]) -> anyhow::Result<()> {
    run(Command::new(cargo()).args(["build", "--release"]).args(args).current_dir(root))
}

/// The workspace's target directory: `CARGO_TARGET_DIR` (relative to the workspace root) or
/// `target/`.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

/// A virtualenv at `root/venv` with the packages pinned in `root/requirements`, made with
/// `PYTHON` (default `python3`); skipped when it was made from the same requirements.
/// Returns its Python.
fn venv(root: &Path, venv: &str, requirements: &str) -> anyhow::Result<PathBuf> {
    let venv = root.join(venv);
    let python = venv.join("bin/python");
    let requirements = root.join(requirements);
    let stamp = venv.join(".requirements");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
        run(Command::new(system_python).arg("-m").arg("venv").arg(&venv))?;
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements))?;
        std::fs::write(&stamp, &wanted)?;
    }
    Ok(python)
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

struct Compat {
    python: PathBuf,
}

/// Creates `target/compat-venv` with the pinned official Python SDK and installs the
/// pinned official JS SDK (for Node in `tests/compat/js`, for the browser test in
/// `tests/browser`) with `npm ci`. Each step is skipped when already current.
fn compat_setup() -> anyhow::Result<Compat> {
    let root = root();
    let python = venv(&root, "target/compat-venv", "tests/compat/python/requirements.txt")?;
    // The JS SDK for Node, and the browser test's SDK bundle, esbuild and playwright-core.
    for dir in ["tests/compat/js", "tests/browser"] {
        let js = root.join(dir);
        let lock = std::fs::read(js.join("package-lock.json")).unwrap_or_default();
        let js_stamp = js.join("node_modules/.installed-lock");
        if std::fs::read(&js_stamp).ok() != Some(lock.clone()) {
            run(Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&js))?;
            std::fs::write(&js_stamp, &lock)?;
        }
    }
    Ok(Compat { python })
}

/// Installs the compat dependencies, then runs every test: doctests first (nextest does not
/// run them), then every other test with nextest when installed, whose summary closes the run.
///
/// The PostgreSQL tests get `DATABASE_URL`, or a server found on 127.0.0.1:5432; without
/// either, nextest leaves them out and reports them as skipped, and the last line says how
/// many and why (`postgres.rs`).
fn test(extra: &[String]) -> anyhow::Result<()> {
    // `cargo xtask test -- -p acs_identity_store`: what follows the first `--` goes to nextest
    // (a second `--` then passes test-name filters, as with nextest itself).
    let extra = extra.strip_prefix(&["--".to_owned()]).unwrap_or(extra);
    let compat = compat_setup()?;
    let root = root();
    let cargo = cargo();
    let postgres = Postgres::find();
    let mut has_nextest = Command::new(&cargo)
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has_nextest && matches!(postgres, Postgres::Unreachable { .. }) {
        postgres::install_nextest(&cargo)?;
        has_nextest = true;
    }
    // `-p NAME` narrows the run (doctests included) to those packages; else the workspace.
    let packages = package_args(extra);
    let scope = if packages.is_empty() { vec!["--workspace".to_owned()] } else { packages };
    run(Command::new(&cargo).args(["test", "--doc"]).args(&scope).current_dir(&root))?;
    // `--all-targets` builds examples as test harnesses; the tests that run an example as a
    // program (`acs_identity`'s e2e `authority`) need the program itself.
    run(Command::new(&cargo).args(["build", "--examples"]).args(&scope).current_dir(&root))?;
    let mut cmd = Command::new(&cargo);
    if has_nextest {
        cmd.args(["nextest", "run", "--all-targets", "--no-fail-fast"]);
    } else {
        cmd.args(["test", "--all-targets", "--no-fail-fast"]);
    }
    if !scope.iter().any(|a| a.starts_with("-p")) {
        cmd.args(&scope);
    }
    // Every in-process service of the suite logs everything to this directory (see
    // `acs_identity_testkit::LOG_DIR_ENV`); no secret may show up in it.
    let log_dir = root.join("target/test-logs");
    let _ = std::fs::remove_dir_all(&log_dir);
    std::fs::create_dir_all(&log_dir)?;
    cmd.args(extra)
        .current_dir(&root)
        .env("ACSID_COMPAT_PYTHON", &compat.python)
        .env("ACSID_TEST_LOG_DIR", &log_dir);
    postgres.configure(&mut cmd);
    let (tests, skipped) = if matches!(postgres, Postgres::Unreachable { .. }) {
        // nextest's own line says how many tests the profile left out; read it on the way.
        if std::env::var_os("CARGO_TERM_COLOR").is_none() && std::io::stderr().is_terminal() {
            cmd.env("CARGO_TERM_COLOR", "always");
        }
        let (status, skipped) = postgres::run_counting_skips(&mut cmd)?;
        let tests = if status.success() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{cmd:?} failed with {status}"))
        };
        (tests, skipped)
    } else {
        (run(&mut cmd), None)
    };
    let scan = scan_logs(&log_dir);
    println!("{}", postgres.summary(skipped));
    tests?;
    scan
}

/// The package selections among `args` (`-p NAME`, `-pNAME`, `--package NAME`,
/// `--package=NAME`), each as `-pNAME`; nothing after a second `--` (test-name filters).
fn package_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter().take_while(|a| a.as_str() != "--");
    while let Some(arg) = it.next() {
        let name = match arg.as_str() {
            "-p" | "--package" => it.next().cloned(),
            a => a
                .strip_prefix("--package=")
                .or_else(|| a.strip_prefix("-p").filter(|rest| !rest.is_empty()))
                .map(str::to_owned),
        };
        out.extend(name.map(|n| format!("-p{n}")));
    }
    out
}

/// What may never appear in a log: the start of a JWT (`{"` in base64url, so every access
/// and Entra token), a connection string's key, and an HMAC `Authorization` value.
const SECRET_MARKERS: [&str; 4] = ["eyJ", "accesskey=", "Signature=", "SignedHeaders="];

/// An access key as printed: 88 base64 characters (64 bytes) ending in `=`.
fn holds_access_key(line: &str) -> bool {
    let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    line.split(|c| !base64(c)).any(|word| word.len() == 88 && word.ends_with('='))
}

/// Searches every captured log file for [`SECRET_MARKERS`]; prints what it searched.
fn scan_logs(dir: &std::path::Path) -> anyhow::Result<()> {
    let (mut files, mut lines, mut found) = (0usize, 0usize, Vec::new());
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        files += 1;
        for (n, line) in text.lines().enumerate() {
            lines += 1;
            if let Some(marker) = SECRET_MARKERS.iter().find(|m| line.contains(*m)) {
                found.push(format!("{}:{}: {marker:?}", path.display(), n + 1));
            } else if holds_access_key(line) {
                found.push(format!("{}:{}: an access key", path.display(), n + 1));
            }
        }
    }
    println!(
        "xtask test: searched {lines} log lines of {files} test processes in {} for {SECRET_MARKERS:?} and access keys: {} found",
        dir.display(),
        found.len()
    );
    if !found.is_empty() {
        anyhow::bail!("secrets in the test suite's logs:\n{}", found.join("\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_selections_are_found() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            package_args(&args("-p a --package b -pc --package=d --no-fail-fast -E x -- -p e")),
            ["-pa", "-pb", "-pc", "-pd"]
        );
        assert!(package_args(&args("--test it -E package(a) -- -p")).is_empty());
    }

    #[test]
    fn access_keys_are_found_in_log_lines() {
        let key = format!("{}==", "A".repeat(86));
        assert!(holds_access_key(&format!("primary key {key} rotated")));
        assert!(holds_access_key(&format!("k=\"{key}\"")));
        // A SHA-256 content hash (44 characters) and ordinary text are not keys.
        assert!(!holds_access_key(
            "x-ms-content-sha256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        ));
        assert!(!holds_access_key(&"A".repeat(88)));
    }
}
