//! The audit log: one JSON line for every state-changing request, whatever its outcome
//! (`layers::audit` writes them), and for the CLI's key commands ([`AdminAudit`]).
//!
//! ```json
//! {"time":"2026-07-22T10:00:00.123456Z","who":"key:primary","operation":"token.revoke",
//!  "target":"8:acs:…","status":204,"error_code":null,"client_request_id":"…"}
//! ```
//!
//! Lines go through a bounded channel to one writer task, which writes whatever has
//! queued up in one `write` and flushes it to the operating system (no `fsync`). A
//! request's line is queued before its response is sent; a full queue makes requests wait
//! for the writer rather than lose lines. Nothing secret is ever in a line: the caller is
//! named by key name or Entra object id, targets are raw ids, and no header but
//! `x-ms-client-request-id` is read.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Lines queued for the writer before requests wait for it.
const QUEUE: usize = 8192;
/// Longest target or client request id written (longer ones are cut).
const MAX_FIELD_CHARS: usize = 256;

/// Where audit lines go (`audit_log`): `"off"`, `"stdout"`, or a file path (appended to).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AuditDestination {
    /// No audit log.
    #[default]
    Off,
    /// Standard output, one line per record.
    Stdout,
    /// A file, created if missing (mode 0600 on Unix) and appended to.
    File(PathBuf),
}

impl Serialize for AuditDestination {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AuditDestination::Off => s.serialize_str("off"),
            AuditDestination::Stdout => s.serialize_str("stdout"),
            AuditDestination::File(p) => p.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for AuditDestination {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = AuditDestination;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"off\", \"stdout\" or a file path")
            }

            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                if v {
                    Err(E::custom("audit_log = true: say \"stdout\" or a file path"))
                } else {
                    Ok(AuditDestination::Off)
                }
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v.trim() {
                    "" | "off" => Ok(AuditDestination::Off),
                    "stdout" | "-" => Ok(AuditDestination::Stdout),
                    path => Ok(AuditDestination::File(PathBuf::from(path))),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The request side of the audit log: queues lines for the writer. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct AuditSink {
    tx: Option<mpsc::Sender<Vec<u8>>>,
}

impl AuditSink {
    /// Whether lines are written at all.
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    pub(crate) async fn write(&self, line: Vec<u8>) {
        if let Some(tx) = &self.tx {
            // Fails only after the writer stopped at shutdown.
            let _ = tx.send(line).await;
        }
    }
}

/// The writer task. [`AuditWriter::finish`] writes what is queued and stops it.
#[derive(Debug)]
pub struct AuditWriter {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl AuditWriter {
    /// Writes every line queued so far, flushes, and stops the writer.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Opens `destination` and starts its writer; a file that cannot be opened fails the start.
pub async fn open(
    destination: &AuditDestination,
) -> anyhow::Result<(AuditSink, Option<AuditWriter>)> {
    let out: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = match destination {
        AuditDestination::Off => return Ok((AuditSink::default(), None)),
        AuditDestination::Stdout => Box::new(tokio::io::stdout()),
        AuditDestination::File(path) => Box::new(tokio::fs::File::from_std(open_file(path)?)),
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(write_lines(rx, out, stopped));
    Ok((AuditSink { tx: Some(tx) }, Some(AuditWriter { stop, task })))
}

/// The audit file, created if missing (mode 0600 on Unix) and opened for appending.
fn open_file(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).with_context(|| format!("cannot open the audit log {}", path.display()))
}

/// The audit log as another process writes it: the CLI's key commands, which change the
/// store directly rather than through a request.
///
/// Only a file destination is written: with `"stdout"` the audit stream is the service's own
/// standard output, which no other process can add to. Each line is one `write` to a file
/// opened for appending, so lines from the service and from here never interleave.
#[derive(Debug)]
pub struct AdminAudit {
    file: Option<std::fs::File>,
}

impl AdminAudit {
    /// Opens `destination` before anything is changed, so a log that cannot be written stops
    /// the change instead of missing it.
    pub fn open(destination: &AuditDestination) -> anyhow::Result<AdminAudit> {
        let file = match destination {
            AuditDestination::File(path) => Some(open_file(path)?),
            AuditDestination::Off | AuditDestination::Stdout => None,
        };
        Ok(AdminAudit { file })
    }

    /// Appends a line for a change that was made: `who` is `cli` (with the user's login name
    /// when `USER` is set), `status` 200.
    pub fn record(
        &mut self,
        operation: &'static str,
        target: &str,
        now: time::OffsetDateTime,
    ) -> anyhow::Result<()> {
        use std::io::Write as _;
        let Some(file) = &mut self.file else { return Ok(()) };
        let who = match std::env::var("USER") {
            Ok(user) if !user.is_empty() => format!("cli:{}", cut(&user)),
            _ => "cli".to_owned(),
        };
        let line = Line {
            time: now.format(&Rfc3339).unwrap_or_default(),
            who,
            app_id: None,
            operation,
            target: Some(cut(target)),
            status: 200,
            error_code: None,
            client_request_id: None,
        };
        let mut bytes = serde_json::to_vec(&line)?;
        bytes.push(b'\n');
        file.write_all(&bytes).context("cannot write the audit log")
    }
}

async fn write_lines(
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut out: Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        let stopping = tokio::select! {
            line = rx.recv() => match line {
                Some(line) => {
                    batch.extend_from_slice(&line);
                    false
                }
                None => true,
            },
            // `finish`, or the writer handle dropped: take no more lines.
            _ = &mut stop => true,
        };
        if stopping {
            rx.close();
            // A closed channel still yields what was queued, then `None`.
            while let Some(line) = rx.recv().await {
                batch.extend_from_slice(&line);
            }
        } else {
            // Everything already queued goes out in the same write.
            while batch.len() < 1024 * 1024 {
                match rx.try_recv() {
                    Ok(line) => batch.extend_from_slice(&line),
                    Err(_) => break,
                }
            }
        }
        if !batch.is_empty() {
            if let Err(e) = write_batch(&mut out, &batch).await {
                tracing::error!(error = %e, "cannot write the audit log");
            }
            batch.clear();
        }
        if stopping {
            break;
        }
    }
}

async fn write_batch(
    out: &mut (dyn tokio::io::AsyncWrite + Send + Unpin),
    batch: &[u8],
) -> std::io::Result<()> {
    out.write_all(batch).await?;
    out.flush().await
}

pub(crate) fn cut(s: &str) -> String {
    s.chars().take(MAX_FIELD_CHARS).collect()
}

/// Set by a handler on its response when the operation is more precise than the route's
/// (a create that also issued a token).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AuditOperation(pub(crate) &'static str);

/// Set by a handler on its response when the target is not in the path (the identity
/// created, or the identity a token was exchanged for).
#[derive(Clone, Debug)]
pub(crate) struct AuditTarget(pub(crate) String);

/// One line of the audit log.
#[derive(Serialize)]
pub(crate) struct Line<'a> {
    pub(crate) time: String,
    pub(crate) who: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) app_id: Option<&'a str>,
    pub(crate) operation: &'static str,
    pub(crate) target: Option<String>,
    pub(crate) status: u16,
    pub(crate) error_code: Option<&'static str>,
    pub(crate) client_request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_from_text() {
        let parse = |v: serde_json::Value| serde_json::from_value::<AuditDestination>(v).unwrap();
        assert_eq!(parse("off".into()), AuditDestination::Off);
        assert_eq!(parse(false.into()), AuditDestination::Off);
        assert_eq!(parse("stdout".into()), AuditDestination::Stdout);
        assert_eq!(
            parse("/var/log/a.jsonl".into()),
            AuditDestination::File("/var/log/a.jsonl".into())
        );
        assert!(serde_json::from_value::<AuditDestination>(true.into()).is_err());
        for d in
            [AuditDestination::Off, AuditDestination::Stdout, AuditDestination::File("x".into())]
        {
            assert_eq!(parse(serde_json::to_value(&d).unwrap()), d);
        }
    }
}
