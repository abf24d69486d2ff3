//! `acs-identity user create --count N`: many users, concurrently, one JSON line each.
//!
//! Workers take the next index until `N` are taken or a stop is requested. Results reach one
//! writer, which prints each line as it arrives and advances the progress bar (on stderr, hidden
//! when stderr is not a terminal). The first Ctrl-C stops taking new work and lets the requests
//! in flight finish; a second one quits at once. The summary `created X of N` goes to stderr.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use acs_identity::CommunicationIdentityClient;
use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use crate::user::{create_one, NewUser};
use crate::Exit;

/// The exit code after an interrupt, as shells report death by SIGINT.
const INTERRUPTED: u8 = 130;

/// What to create.
#[derive(Debug)]
pub(crate) struct BulkPlan {
    /// How many users.
    pub(crate) count: u64,
    /// Requests in flight at most.
    pub(crate) concurrency: u16,
    /// Each user (with a token when it has scopes).
    pub(crate) user: NewUser,
    /// Where the JSON lines go; stdout when `None`.
    pub(crate) out: Option<PathBuf>,
}

/// How the run ended.
enum Ending {
    /// Every user was created.
    Done,
    /// A request failed; the others in flight were let finish.
    Failed(anyhow::Error),
    /// Ctrl-C.
    Interrupted,
}

/// Creates `plan.count` users and prints them.
pub(crate) async fn run(client: CommunicationIdentityClient, plan: BulkPlan) -> anyhow::Result<()> {
    let mut sink = Sink::open(plan.out.as_ref())?;
    let progress = progress_bar(plan.count);
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let user = Arc::new(plan.user);
    let (tx, mut rx) = mpsc::channel(usize::from(plan.concurrency) * 2);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..plan.concurrency {
        let (client, user, tx) = (client.clone(), user.clone(), tx.clone());
        let (stop, next, count) = (stop.clone(), next.clone(), plan.count);
        workers.spawn(async move {
            while !stop.load(Ordering::SeqCst) && next.fetch_add(1, Ordering::SeqCst) < count {
                let result = create_one(&client, &user).await;
                if tx.send(result).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);

    let mut created: u64 = 0;
    let mut ending = Ending::Done;
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            result = rx.recv() => match result {
                None => break,
                Some(Ok(user)) => {
                    let line = serde_json::to_string(&user)?;
                    progress.suspend(|| sink.write_line(&line))?;
                    created += 1;
                    progress.inc(1);
                }
                Some(Err(error)) => {
                    stop.store(true, Ordering::SeqCst);
                    if matches!(ending, Ending::Done) {
                        ending = Ending::Failed(error);
                    }
                }
            },
            _ = &mut ctrl_c => {
                if matches!(ending, Ending::Interrupted) {
                    // The second Ctrl-C: do not wait for the requests in flight.
                    workers.abort_all();
                    break;
                }
                stop.store(true, Ordering::SeqCst);
                ending = Ending::Interrupted;
                progress.set_message("interrupted: finishing the requests in flight (Ctrl-C again to quit now)");
                ctrl_c = Box::pin(tokio::signal::ctrl_c());
            }
        }
    }
    progress.finish_and_clear();
    sink.finish()?;
    eprintln!("created {created} of {}", plan.count);
    match ending {
        Ending::Done => Ok(()),
        Ending::Failed(error) => Err(error),
        Ending::Interrupted => Err(Exit(INTERRUPTED).into()),
    }
}

/// A progress bar on stderr with count, rate and ETA; indicatif hides it when stderr is not a
/// terminal.
fn progress_bar(count: u64) -> ProgressBar {
    let progress = ProgressBar::new(count);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} users, {per_sec}, ETA {eta} {msg}",
    );
    if let Ok(style) = style {
        progress.set_style(style);
    }
    progress.enable_steady_tick(StdDuration::from_millis(200));
    progress
}

/// Where the JSON lines go. Each line is flushed, so readers see users as they are created.
enum Sink {
    Stdout(std::io::Stdout),
    File(BufWriter<File>, PathBuf),
}

impl Sink {
    fn open(out: Option<&PathBuf>) -> anyhow::Result<Sink> {
        Ok(match out {
            None => Sink::Stdout(std::io::stdout()),
            Some(path) => {
                let file = File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                Sink::File(BufWriter::new(file), path.clone())
            }
        })
    }

    fn write_line(&mut self, line: &str) -> anyhow::Result<()> {
        match self {
            Sink::Stdout(stdout) => {
                let mut stdout = stdout.lock();
                writeln!(stdout, "{line}")?;
                stdout.flush()?;
            }
            Sink::File(file, path) => {
                writeln!(file, "{line}")
                    .and_then(|()| file.flush())
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        if let Sink::File(file, path) = self {
            file.get_ref()
                .sync_all()
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}
