//! `cargo xtask fuzz`: runs every cargo-fuzz target of `fuzz/` (or the ones named), one
//! after the other (one libFuzzer process at a time), for a fixed time or a fixed number of
//! executions each, on the kept corpus and the seeds; keeps the inputs that added coverage
//! in `fuzz/corpus/<target>`; prints executions and coverage per target.
//!
//! Options (after `--`): `--minutes N` per target (default 5; fractions allowed), or
//! `--runs N` executions per target instead; `--no-keep` leaves `fuzz/corpus/` alone;
//! target names to run only those.
//!
//! Where things go (`CARGO_TARGET_DIR`, default `target-fuzz/`): the working corpus of
//! every input that ever added coverage locally in `fuzz-corpus/<target>` (libFuzzer writes
//! there as it finds them; never committed), each run's log in `fuzz-<target>.log`. A crash,
//! timeout or out-of-memory input is written to `fuzz/artifacts/<target>/` and fails the run.
//!
//! Keeping: after a target's run, libFuzzer's `-set_cover_merge=1` replays the working
//! corpus over the seeds and `fuzz/corpus/<target>` and copies only inputs that reach
//! coverage neither has; those are added to `fuzz/corpus/<target>` (named by their SHA-1, as
//! libFuzzer names them), so the committed corpus grows by coverage, never by volume.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context as _};

use crate::root;

const USAGE: &str =
    "usage: cargo xtask fuzz [-- [--minutes N | --runs N] [--no-keep] [TARGET ...]]";

#[derive(Debug, Clone, PartialEq)]
enum Budget {
    Seconds(u64),
    Runs(u64),
}

#[derive(Debug, Clone, PartialEq)]
struct Options {
    budget: Budget,
    keep: bool,
    targets: Vec<String>,
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options { budget: Budget::Seconds(300), keep: true, targets: Vec::new() };
    let mut it = args.iter().filter(|a| a.as_str() != "--");
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> anyhow::Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it.next().cloned().with_context(|| format!("{name} needs a value")),
            }
        };
        match name {
            "--minutes" => {
                let v = value()?;
                let minutes: f64 =
                    v.parse().ok().filter(|m: &f64| m.is_finite() && *m > 0.0).with_context(
                        || format!("--minutes {v}: expected a positive number\n{USAGE}"),
                    )?;
                // At most a year; `as` saturates, and the bound keeps it meaningful.
                o.budget =
                    Budget::Seconds((minutes * 60.0).round().clamp(1.0, 31_536_000.0) as u64);
            }
            "--runs" => {
                let v = value()?;
                let runs: u64 = v.parse().ok().filter(|r| *r > 0).with_context(|| {
                    format!("--runs {v}: expected a positive whole number\n{USAGE}")
                })?;
                o.budget = Budget::Runs(runs);
            }
            "--no-keep" => o.keep = false,
            "-h" | "--help" => bail!("{USAGE}"),
            flag if flag.starts_with('-') => bail!("unknown option {flag}\n{USAGE}"),
            target => o.targets.push(target.to_owned()),
        }
    }
    Ok(o)
}

/// What one libFuzzer run reported about itself.
#[derive(Debug, Default, Clone, PartialEq)]
struct Stats {
    executions: Option<u64>,
    exec_per_sec: Option<u64>,
    peak_rss_mb: Option<u64>,
    /// Coverage points (edges) reached, the `cov:` of libFuzzer's last status line.
    cov: Option<u64>,
    /// Features (edges with hit counts, value profiles), `ft:`.
    ft: Option<u64>,
    /// Inputs in the corpus at the end, `corp:`.
    corpus: Option<u64>,
}

/// Reads `stat::…` lines (`-print_final_stats=1`) and the last `#N … cov: …` status line.
fn parse_stats(log: &str) -> Stats {
    let stat = |name: &str| {
        log.lines()
            .rev()
            .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
            .and_then(|v| v.trim().parse().ok())
    };
    let status = log.lines().rev().find(|l| l.starts_with('#') && l.contains(" cov: "));
    let field = |name: &str| -> Option<u64> {
        let rest = status?.split(&format!(" {name}: ")).nth(1)?;
        let word = rest.split_whitespace().next()?;
        // `corp: 123/4567b`: the count comes before the size.
        word.split('/').next()?.parse().ok()
    };
    Stats {
        executions: stat("number_of_executed_units"),
        exec_per_sec: stat("average_exec_per_sec"),
        peak_rss_mb: stat("peak_rss_mb"),
        cov: field("cov"),
        ft: field("ft"),
        corpus: field("corp"),
    }
}

/// The variables besides `CARGO_PKG_*` that `cargo run` sets for the program it runs.
fn cargo_run_sets(name: &str) -> bool {
    matches!(
        name,
        "CARGO_MANIFEST_DIR"
            | "CARGO_MANIFEST_PATH"
            | "CARGO_CRATE_NAME"
            | "CARGO_BIN_NAME"
            | "CARGO_PRIMARY_PACKAGE"
    )
}

/// The lines of a failed run's log that say what was found and where it was written.
fn finding_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            ["panicked", "ERROR:", "SUMMARY:", "Test unit written", "Base64:", "==ERROR"]
                .iter()
                .any(|m| l.contains(m))
        })
        .take(20)
        .collect()
}

/// Groups digits by three with a space (`10 000 000`), as the docs write numbers.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn show(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_owned(), grouped)
}

struct Outcome {
    target: String,
    stats: Stats,
    kept: usize,
    kept_bytes: u64,
    seconds: u64,
    failed: bool,
}

pub(crate) fn fuzz(args: &[String]) -> anyhow::Result<()> {
    let options = parse_options(args)?;
    let root = root();
    let cargo = crate::cargo();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target-fuzz"));
    std::fs::create_dir_all(&target_dir)?;
    let cargo_fuzz = || {
        let mut c = Command::new(&cargo);
        // cargo-fuzz needs unstable compiler flags (sanitizers, coverage instrumentation);
        // the stable toolchain allows them with RUSTC_BOOTSTRAP=1.
        c.arg("fuzz")
            .current_dir(&root)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_DIR", &target_dir);
        // What `cargo run` set for xtask itself: a build script of the fuzz build tracks
        // CARGO_MANIFEST_DIR, so with it the build would differ from `fuzz/smoke.sh`'s and
        // each would rebuild everything after the other.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_") || cargo_run_sets(&name) {
                c.env_remove(name.as_ref());
            }
        }
        c
    };

    let installed = cargo_fuzz().arg("--version").output().is_ok_and(|o| o.status.success());
    if !installed {
        crate::run(Command::new(&cargo).args(["install", "cargo-fuzz", "--locked"]))?;
    }

    let started = Instant::now();
    let build_log = target_dir.join("fuzz-build.log");
    let log_file = std::fs::File::create(&build_log)?;
    eprintln!("xtask fuzz: building the targets (log: {})", build_log.display());
    let built = cargo_fuzz()
        .args(["build", "-O"])
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .status()
        .context("cannot run cargo fuzz build")?;
    if !built.success() {
        let log = std::fs::read_to_string(&build_log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        bail!(
            "cargo fuzz build failed:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    eprintln!("xtask fuzz: built in {} s", started.elapsed().as_secs());

    let targets = if options.targets.is_empty() {
        let out = cargo_fuzz().arg("list").output().context("cannot run cargo fuzz list")?;
        String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
    } else {
        options.targets.clone()
    };
    let budget = match options.budget {
        Budget::Seconds(s) => {
            eprintln!("xtask fuzz: {} target(s), {s} s each", targets.len());
            format!("-max_total_time={s}")
        }
        Budget::Runs(r) => {
            eprintln!("xtask fuzz: {} target(s), {} executions each", targets.len(), grouped(r));
            format!("-runs={r}")
        }
    };

    let mut outcomes = Vec::new();
    for target in &targets {
        let work = target_dir.join("fuzz-corpus").join(target);
        let kept_dir = root.join("fuzz/corpus").join(target);
        let seeds = root.join("fuzz/seeds").join(target);
        std::fs::create_dir_all(&work)?;
        let mut dirs = vec![work.clone()];
        dirs.extend([&kept_dir, &seeds].into_iter().filter(|d| d.is_dir()).cloned());

        let log_path = target_dir.join(format!("fuzz-{target}.log"));
        let log_file = std::fs::File::create(&log_path)?;
        eprintln!("xtask fuzz: {target} (log: {})", log_path.display());
        let began = Instant::now();
        let status = cargo_fuzz()
            .args(["run", "-O", target])
            .args(&dirs)
            .args(["--", &budget, "-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .status()
            .with_context(|| format!("cannot run cargo fuzz run {target}"))?;
        let seconds = began.elapsed().as_secs();
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let stats = parse_stats(&log);
        let failed = !status.success();
        if failed {
            eprintln!("xtask fuzz: {target} failed ({status}):");
            for line in finding_lines(&log) {
                eprintln!("    {line}");
            }
        }
        let (kept, kept_bytes) = if options.keep && !failed {
            keep_new_coverage(&cargo_fuzz, &target_dir, target, &work, &kept_dir, &seeds)?
        } else {
            (0, 0)
        };
        outcomes.push(Outcome { target: target.clone(), stats, kept, kept_bytes, seconds, failed });
    }

    println!(
        "{:<20} {:>13} {:>8} {:>7} {:>8} {:>7} {:>8} {:>12} {:>7}  result",
        "target",
        "executions",
        "exec/s",
        "cov",
        "ft",
        "corpus",
        "peak_MB",
        "kept (bytes)",
        "time_s"
    );
    for o in &outcomes {
        println!(
            "{:<20} {:>13} {:>8} {:>7} {:>8} {:>7} {:>8} {:>12} {:>7}  {}",
            o.target,
            show(o.stats.executions),
            show(o.stats.exec_per_sec),
            show(o.stats.cov),
            show(o.stats.ft),
            show(o.stats.corpus),
            show(o.stats.peak_rss_mb),
            format!("{} ({})", o.kept, grouped(o.kept_bytes)),
            o.seconds,
            if o.failed { "FAILED" } else { "ok" }
        );
    }
    println!(
        "xtask fuzz: cov = coverage points (edges) reached, ft = features, corpus = inputs at the end; \
kept = new inputs added to fuzz/corpus/<target>; {} min in all",
        started.elapsed().as_secs() / 60
    );
    let failed: Vec<&str> =
        outcomes.iter().filter(|o| o.failed).map(|o| o.target.as_str()).collect();
    if !failed.is_empty() {
        bail!(
            "fuzz targets that failed: {} (inputs in fuzz/artifacts/<target>/, logs in {}/fuzz-<target>.log)",
            failed.join(", "),
            target_dir.display()
        );
    }
    Ok(())
}

/// Adds to `kept_dir` the inputs of `work` that reach coverage the seeds and `kept_dir` do
/// not: libFuzzer's merge into a scratch copy of both, then whatever the merge added.
/// Returns how many inputs were added and their total size.
fn keep_new_coverage(
    cargo_fuzz: &dyn Fn() -> Command,
    target_dir: &Path,
    target: &str,
    work: &Path,
    kept_dir: &Path,
    seeds: &Path,
) -> anyhow::Result<(usize, u64)> {
    let scratch = target_dir.join("fuzz-merge").join(target);
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let mut before = HashSet::new();
    for dir in [seeds, kept_dir] {
        for name in files(dir)? {
            // Seeds and kept inputs may share a name only if they share content (SHA-1).
            std::fs::copy(dir.join(&name), scratch.join(&name))?;
            before.insert(name);
        }
    }
    let log_path = target_dir.join(format!("fuzz-{target}-merge.log"));
    let log_file = std::fs::File::create(&log_path)?;
    let status = cargo_fuzz()
        .args(["run", "-O", target])
        .arg(&scratch)
        .arg(work)
        // The set-cover merge keeps the same features as `-merge=1` with fewer inputs (about
        // half as many for entra_token's 10 M executions).
        .args(["--", "-set_cover_merge=1", "-timeout=10", "-rss_limit_mb=2048"])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .status()
        .with_context(|| format!("cannot merge the corpus of {target}"))?;
    if !status.success() {
        bail!("merging the corpus of {target} failed ({status}); log: {}", log_path.display());
    }
    let (mut added, mut bytes) = (0, 0);
    for name in files(&scratch)? {
        if before.contains(&name) {
            continue;
        }
        std::fs::create_dir_all(kept_dir)?;
        bytes += std::fs::copy(scratch.join(&name), kept_dir.join(&name))?;
        added += 1;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok((added, bytes))
}

/// The names of the files in `dir` (none when it does not exist).
fn files(dir: &Path) -> anyhow::Result<Vec<String>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options_choose_time_or_executions_and_targets() {
        let o = parse_options(&args("-- --minutes 2.5 raw_id json_body")).unwrap();
        assert_eq!(o.budget, Budget::Seconds(150));
        assert_eq!(o.targets, ["raw_id", "json_body"]);
        assert!(o.keep);
        let o = parse_options(&args("--runs=10000000 --no-keep")).unwrap();
        assert_eq!(o.budget, Budget::Runs(10_000_000));
        assert!(!o.keep && o.targets.is_empty());
        assert_eq!(parse_options(&[]).unwrap().budget, Budget::Seconds(300));
        for bad in ["--minutes 0", "--minutes x", "--runs -1", "--runs", "--jobs 2"] {
            assert!(parse_options(&args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn stats_come_from_the_final_stats_and_the_last_status_line() {
        let log = "INFO: Seed: 1\n\
            #2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb\n\
            #524288\tpulse  cov: 1201 ft: 3456 corp: 300/9Kb lim: 4096 exec/s: 26214 rss: 480Mb\n\
            #1000000\tDONE   cov: 1234 ft: 3501 corp: 312/9876b lim: 4096 exec/s: 25000 rss: 483Mb\n\
            Done 1000000 runs in 40 second(s)\n\
            stat::number_of_executed_units: 1000000\n\
            stat::average_exec_per_sec:     25000\n\
            stat::new_units_added:          311\n\
            stat::slowest_unit_time_sec:    0\n\
            stat::peak_rss_mb:              483\n";
        assert_eq!(
            parse_stats(log),
            Stats {
                executions: Some(1_000_000),
                exec_per_sec: Some(25_000),
                peak_rss_mb: Some(483),
                cov: Some(1234),
                ft: Some(3501),
                corpus: Some(312),
            }
        );
        assert_eq!(parse_stats("error: no such target"), Stats::default());
    }

    #[test]
    fn findings_and_numbers_are_shown_readably() {
        let log = "#100 NEW cov: 1\nthread '<unnamed>' panicked at src/lib.rs:1:1:\nboom\n\
            ==123== ERROR: libFuzzer: deadly signal\nSUMMARY: libFuzzer: deadly signal\n\
            artifact_prefix='fuzz/artifacts/raw_id/'; Test unit written to fuzz/artifacts/raw_id/crash-1\n";
        assert_eq!(finding_lines(log).len(), 4);
        assert_eq!(grouped(10_000_000), "10 000 000");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1 000");
        assert_eq!(show(None), "?");
    }
}
