//! The packages of `cargo xtask dist` as their users install them: the wheel into a fresh
//! virtualenv running `tests/packages/python/test_sdk.py` (only the pytest fixture and the
//! official Python SDK), the npm tarball into a fresh folder running
//! `tests/packages/js/sdk.test.mjs` (only `startAcsIdentity` and the official JS SDK). Each
//! run gets its own empty `TMPDIR` and working directory; afterwards no process of the
//! installed binary may be left and both must be as empty as before.
//!
//! They need `target/dist` (`cargo xtask dist`, which `.ci/run` runs first). Without it they
//! are skipped with a message, unless `ACSID_REQUIRE_DIST` is set (as `.ci/run` does).
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The one file in `target/dist` whose name starts with `prefix` and ends with `suffix`, or
/// `None` (with a message) when `target/dist` is missing and not required.
fn artifact(prefix: &str, suffix: &str) -> Option<PathBuf> {
    let dist = root().join("target/dist");
    let found: Vec<PathBuf> = std::fs::read_dir(&dist)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .collect();
    match found.as_slice() {
        [one] => Some(one.clone()),
        [] if std::env::var_os("ACSID_REQUIRE_DIST").is_none() => {
            eprintln!(
                "SKIPPED: no {prefix}*{suffix} in {}; run `cargo xtask dist` first",
                dist.display()
            );
            None
        }
        _ => panic!("expected one {prefix}*{suffix} in {}, found {found:?}", dist.display()),
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Processes running `binary` (their `/proc/PID/exe`).
fn processes_of(binary: &Path) -> Vec<u32> {
    let binary = binary.canonicalize().expect("installed binary");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok().as_ref() == Some(&binary))
        .collect()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn wheel_installs_and_its_pytest_fixture_serves_the_python_sdk() {
    let Some(wheel) = artifact("acs_identity-", ".whl") else { return };
    let root = root();
    let dir = tempfile::tempdir().expect("temporary directory");
    let (venv, work, tmp) =
        (dir.path().join("venv"), dir.path().join("work"), dir.path().join("tmp"));
    std::fs::create_dir_all(&work).expect("work");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    run(Command::new(python).arg("-m").arg("venv").arg(&venv));
    run(Command::new(venv.join("bin/python"))
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .arg(&wheel)
        .arg("-r")
        .arg(root.join("tests/packages/python/requirements.txt")));
    let binary = venv.join("bin/acs-identity");
    assert!(run(Command::new(&binary).arg("--version")).contains("acs-identity"));
    std::fs::copy(root.join("tests/packages/python/test_sdk.py"), work.join("test_sdk.py"))
        .expect("copy test_sdk.py");

    let out = run(Command::new(venv.join("bin/python"))
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-v", "test_sdk.py"])
        .current_dir(&work)
        .env("TMPDIR", &tmp)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("ACS_IDENTITY_BINARY")
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("SSL_CERT_FILE"));
    assert!(out.contains("3 passed"), "pytest output:\n{out}");

    assert_eq!(processes_of(&binary), Vec::<u32>::new(), "the service outlived pytest");
    assert_eq!(entries(&tmp), Vec::<String>::new(), "temporary files left behind");
    assert_eq!(entries(&work), ["test_sdk.py"], "files left in the working directory");

    // Elsewhere pip refuses the wheel by its tag, and the package refuses to start.
    let refused = Command::new(venv.join("bin/python"))
        .args(["-m", "pip", "install", "--dry-run", "--no-deps", "--only-binary=:all:"])
        .args(["--platform", "macosx_11_0_arm64", "--target"])
        .arg(dir.path().join("elsewhere"))
        .arg(&wheel)
        .output()
        .expect("pip");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("is not a supported wheel on this platform"),
        "pip on macOS: {stderr}"
    );
    let refused = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import sys; sys.platform = 'darwin'; import acs_identity; acs_identity.start()",
        ])
        .env_remove("ACS_IDENTITY_BINARY")
        .output()
        .expect("python");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("UnsupportedPlatformError")
            && stderr.contains("linux x86-64 only; this is darwin"),
        "start() on macOS: {stderr}"
    );
}

#[test]
fn npm_package_installs_and_start_acs_identity_serves_the_js_sdk() {
    let Some(tarball) = artifact("acs-identity-", ".tgz") else { return };
    let root = root();
    let dir = tempfile::tempdir().expect("temporary directory");
    let (work, tmp) = (dir.path().join("work"), dir.path().join("tmp"));
    std::fs::create_dir_all(&work).expect("work");
    std::fs::create_dir_all(&tmp).expect("tmp");
    for file in ["package.json", "sdk.test.mjs"] {
        std::fs::copy(root.join("tests/packages/js").join(file), work.join(file)).expect("copy");
    }
    run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .arg(&tarball)
        .current_dir(&work));
    let binary = work.join("node_modules/acs-identity/native/acs-identity");
    // The package's `bin` entry.
    assert!(run(Command::new(work.join("node_modules/.bin/acs-identity")).arg("--version"))
        .contains("acs-identity"));
    let before = entries(&work);

    let out = run(Command::new("node")
        .args(["--test", "--test-reporter=spec", "sdk.test.mjs"])
        .current_dir(&work)
        .env("TMPDIR", &tmp)
        .env_remove("ACS_IDENTITY_BINARY")
        .env_remove("NODE_EXTRA_CA_CERTS")
        .env_remove("NODE_OPTIONS"));
    assert!(out.contains("pass 3") && out.contains("fail 0"), "node --test output:\n{out}");

    assert_eq!(processes_of(&binary), Vec::<u32>::new(), "the service outlived node --test");
    assert_eq!(entries(&tmp), Vec::<String>::new(), "temporary files left behind");
    assert_eq!(entries(&work), before, "files left in the working directory");

    // Elsewhere npm refuses the package by its "os" and "cpu" (EBADPLATFORM), and the
    // module refuses to start.
    let manifest = std::fs::read_to_string(work.join("node_modules/acs-identity/package.json"))
        .expect("installed package.json");
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("package.json");
    assert_eq!(manifest["os"], serde_json::json!(["linux"]));
    assert_eq!(manifest["cpu"], serde_json::json!(["x64"]));
    let refused = Command::new("node")
        .args([
            "--input-type=module",
            "-e",
            "Object.defineProperty(process, 'platform', { value: 'darwin' });\n\
             const { startAcsIdentity } = await import('acs-identity');\n\
             await startAcsIdentity();",
        ])
        .current_dir(&work)
        .env_remove("ACS_IDENTITY_BINARY")
        .output()
        .expect("node");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("AcsIdentityError") && stderr.contains("linux x64 only; this is darwin"),
        "startAcsIdentity() on macOS: {stderr}"
    );
}
