//! `cargo xtask dist`: the release binary packaged for people without a Rust toolchain.
//!
//! maturin does the release build of `acs_identity_cli`'s binary (`cargo rustc --release
//! --locked`, stripped, in the workspace's `target/`) and writes to `target/dist/`:
//! - `acs_identity-<version>-py3-none-manylinux_<glibc>_x86_64.whl`
//!   (`bindings = "bin"`, `packaging/python/pyproject.toml`): the binary plus the
//!   pure-Python package of `packaging/python/python/` (`acs_identity.start()`, the pytest
//!   plugin). maturin picks the lowest manylinux tag the binary's glibc symbols allow and
//!   `auditwheel show` must agree with it.
//! - `acs-identity-<version>.tgz` (`npm pack` of `packaging/npm/` with the same binary in
//!   `native/`).
//!
//! Both carry a linux x86-64 binary, so `dist` runs only there.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context as _};

use crate::{root, run};

pub(crate) fn dist(args: &[String]) -> anyhow::Result<()> {
    if let Some(arg) = args.first() {
        bail!("cargo xtask dist takes no arguments (got {arg:?})");
    }
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        bail!("the packages carry a linux x86-64 binary: run `cargo xtask dist` on linux x86-64");
    }
    let root = root();
    let cargo = crate::cargo();
    let version = cli_version(&cargo, &root)?;
    let dist = root.join("target/dist");
    if dist.exists() {
        std::fs::remove_dir_all(&dist)?;
    }
    std::fs::create_dir_all(&dist)?;

    let python = tools_venv(&root)?;
    let wheel = build_wheel(&root, &python, &dist, &version)?;
    let stage = dist.join("npm-package");
    let binary = stage.join("native/acs-identity");
    extract_binary(&python, &wheel, &version, &binary)?;
    let tarball = build_npm(&root, &stage, &dist, &version)?;
    std::fs::remove_dir_all(&stage)?;

    for file in [&wheel, &tarball] {
        let size = std::fs::metadata(file)?.len();
        println!(
            "xtask dist: {} ({:.1} MiB, {size} bytes)",
            file.display(),
            size as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(())
}

/// The version of `acs_identity_cli`, which both packages carry.
fn cli_version(cargo: &str, root: &Path) -> anyhow::Result<String> {
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .current_dir(root)
        .output()
        .context("cannot run cargo metadata")?;
    ensure!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "acs_identity_cli")
        .and_then(|p| p["version"].as_str())
        .map(str::to_owned)
        .context("acs_identity_cli is not in cargo metadata")
}

/// `target/dist-venv` with the pinned maturin and auditwheel; skipped when current.
fn tools_venv(root: &Path) -> anyhow::Result<PathBuf> {
    crate::venv(root, "target/dist-venv", "packaging/python/requirements-build.txt")
}

/// Builds the wheel with maturin and checks its platform tag with `auditwheel show`.
fn build_wheel(root: &Path, python: &Path, dist: &Path, version: &str) -> anyhow::Result<PathBuf> {
    run(Command::new(python)
        .args(["-m", "maturin", "build", "--release", "--locked", "--auditwheel", "check", "--out"])
        .arg(dist)
        .current_dir(root.join("packaging/python")))?;
    let prefix = format!("acs_identity-{version}-py3-none-");
    let wheels: Vec<PathBuf> = std::fs::read_dir(dist)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .collect();
    let [wheel] = wheels.as_slice() else {
        bail!("maturin wrote {} wheels named {prefix}*.whl to {}", wheels.len(), dist.display());
    };
    let name = wheel.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let tag = name.trim_start_matches(&prefix).trim_end_matches(".whl");
    ensure!(
        tag.starts_with("manylinux") && tag.ends_with("_x86_64"),
        "the wheel's platform tag {tag:?} is not a manylinux x86-64 tag"
    );
    let out = Command::new(python.with_file_name("auditwheel"))
        .arg("show")
        .arg(wheel)
        .output()
        .context("cannot run auditwheel")?;
    let report = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && report.contains(&format!("\"{tag}\"")),
        "auditwheel does not find {name} consistent with its tag {tag}:\n{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("xtask dist: auditwheel agrees with the wheel's tag {tag}");
    Ok(wheel.clone())
}

/// Copies the (stripped) binary out of the wheel, so both packages carry the same file.
fn extract_binary(python: &Path, wheel: &Path, version: &str, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to.parent().context("no parent")?)?;
    let member = format!("acs_identity-{version}.data/scripts/acs-identity");
    run(Command::new(python)
        .args([
            "-c",
            "import sys, zipfile; open(sys.argv[3], 'wb').write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
        ])
        .arg(wheel)
        .arg(&member)
        .arg(to))?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Stages `packaging/npm` with the binary and the version, and packs it with `npm pack`.
fn build_npm(root: &Path, stage: &Path, dist: &Path, version: &str) -> anyhow::Result<PathBuf> {
    let source = root.join("packaging/npm");
    for file in ["index.js", "index.d.ts", "README.md"] {
        std::fs::copy(source.join(file), stage.join(file))
            .with_context(|| format!("cannot copy packaging/npm/{file}"))?;
    }
    // A textual edit keeps the key order (the `exports` conditions' order matters).
    let manifest = std::fs::read_to_string(source.join("package.json"))?;
    let placeholder = "\"version\": \"0.0.0\"";
    ensure!(
        manifest.matches(placeholder).count() == 1,
        "packaging/npm/package.json must hold {placeholder} once"
    );
    let manifest = manifest.replace(placeholder, &format!("\"version\": \"{version}\""));
    std::fs::write(stage.join("package.json"), manifest)?;
    run(Command::new("npm")
        .args(["pack", "--loglevel=error", "--pack-destination"])
        .arg(dist)
        .current_dir(stage))?;
    let tarball = dist.join(format!("acs-identity-{version}.tgz"));
    ensure!(tarball.is_file(), "npm pack did not write {}", tarball.display());
    Ok(tarball)
}
