//! Group commit for SQLite: one task applies every identity write that is waiting in one
//! transaction, so one `fsync` acknowledges a whole batch. It borrows the store's single
//! write connection for each batch, so the store's other (rare) writes queue behind it
//! instead of competing for SQLite's write lock.
//!
//! Each caller gets its answer only after the batch's `COMMIT` returned, so an `Ok` is
//! still durable (`synchronous=FULL`). When a batch fails, its operations are applied
//! again one transaction each, so one bad operation cannot fail its neighbours.

use acs_identity_core::id::UserId;
use acs_identity_core::store::{
    CreatedIdentity, IdentityRecord, NewIdentity, StoreError, StoreResult,
};
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Connection, Sqlite, Transaction};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::convert::to_nanos;
use crate::sqlite::{backend, identity_from_row, IDENTITY_COLUMNS};

/// Most operations committed together.
const MAX_BATCH: usize = 512;
/// Operations waiting for the writer before callers are slowed down.
const QUEUE: usize = 4096;

/// A write the writer applies.
#[derive(Debug)]
pub(crate) enum Op {
    Create(NewIdentity),
    MarkTokenIssued(UserId, OffsetDateTime),
    Revoke(UserId),
    Delete(UserId, OffsetDateTime),
}

/// What a write produced.
#[derive(Debug)]
pub(crate) enum Done {
    Created(CreatedIdentity),
    Record(Option<IdentityRecord>),
}

struct Job {
    op: Op,
    reply: oneshot::Sender<StoreResult<Done>>,
}

/// Handle to the writer task.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("op", &self.op).finish_non_exhaustive()
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the SQLite writer has stopped".into())
}

impl Writer {
    /// Starts the writer task on the write pool.
    pub(crate) fn spawn(pool: SqlitePool) -> Writer {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx));
        Writer { jobs }
    }

    /// Applies `op` and waits for its commit.
    pub(crate) async fn submit(&self, op: Op) -> StoreResult<Done> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { op, reply }).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                let e = backend(e);
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(StoreError::Unavailable(e.to_string().into())));
                }
                continue;
            }
        };
        match apply_all(&mut conn, &batch).await {
            Ok(results) => {
                for (job, result) in batch.drain(..).zip(results) {
                    let _ = job.reply.send(Ok(result));
                }
            }
            Err(_) => {
                // Find the culprit: one transaction per operation.
                for job in batch.drain(..) {
                    let result = apply_all(&mut conn, std::slice::from_ref(&job))
                        .await
                        .map(|mut r| r.remove(0))
                        .map_err(backend);
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}

async fn apply_all(conn: &mut SqliteConnection, jobs: &[Job]) -> Result<Vec<Done>, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        out.push(apply(&mut tx, &job.op).await?);
    }
    tx.commit().await?;
    Ok(out)
}

fn id_bytes(user: &UserId) -> Vec<u8> {
    user.as_uuid().as_bytes().to_vec()
}

async fn fetch(
    tx: &mut Transaction<'_, Sqlite>,
    user: UserId,
) -> Result<Option<IdentityRecord>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE user_id = ?"))
        .bind(id_bytes(&user))
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(identity_from_row).transpose().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Runs an `UPDATE … RETURNING` on a live identity; reads the row when nothing matched
/// (missing or deleted).
async fn update_live(
    tx: &mut Transaction<'_, Sqlite>,
    sql: &str,
    user: UserId,
    at: Option<OffsetDateTime>,
) -> Result<Option<IdentityRecord>, sqlx::Error> {
    let mut q = sqlx::query(sql);
    if let Some(at) = at {
        q = q.bind(to_nanos(at));
    }
    let row = q.bind(id_bytes(&user)).fetch_optional(&mut **tx).await?;
    match row {
        Some(row) => {
            identity_from_row(&row).map(Some).map_err(|e| sqlx::Error::Decode(Box::new(e)))
        }
        None => fetch(tx, user).await,
    }
}

async fn apply(tx: &mut Transaction<'_, Sqlite>, op: &Op) -> Result<Done, sqlx::Error> {
    match op {
        Op::Create(new) => create(tx, new).await.map(Done::Created),
        Op::MarkTokenIssued(user, at) => update_live(
            tx,
            &format!(
                "UPDATE identities SET last_token_issued_at = ? WHERE user_id = ? AND deleted_at IS NULL \
                 RETURNING {IDENTITY_COLUMNS}"
            ),
            *user,
            Some(*at),
        )
        .await
        .map(Done::Record),
        Op::Revoke(user) => update_live(
            tx,
            &format!(
                "UPDATE identities SET generation = generation + 1 WHERE user_id = ? AND deleted_at IS NULL \
                 RETURNING {IDENTITY_COLUMNS}"
            ),
            *user,
            None,
        )
        .await
        .map(Done::Record),
        Op::Delete(user, at) => update_live(
            tx,
            &format!(
                "UPDATE identities SET deleted_at = ? WHERE user_id = ? AND deleted_at IS NULL \
                 RETURNING {IDENTITY_COLUMNS}"
            ),
            *user,
            Some(*at),
        )
        .await
        .map(Done::Record),
    }
}

async fn create(
    tx: &mut Transaction<'_, Sqlite>,
    new: &NewIdentity,
) -> Result<CreatedIdentity, sqlx::Error> {
    if let Some(custom) = &new.custom_id {
        let existing = sqlx::query(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities WHERE custom_id = ? AND deleted_at IS NULL"
        ))
        .bind(custom)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = existing {
            let mut record =
                identity_from_row(&row).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            if let Some(at) = new.token_issued_at {
                sqlx::query("UPDATE identities SET last_token_issued_at = ? WHERE user_id = ?")
                    .bind(to_nanos(at))
                    .bind(id_bytes(&record.user))
                    .execute(&mut **tx)
                    .await?;
                record.last_token_issued_at = Some(at);
            }
            return Ok(CreatedIdentity { record, created: false });
        }
    }
    sqlx::query(
        "INSERT INTO identities (user_id, custom_id, created_at, generation, last_token_issued_at) \
         VALUES (?, ?, ?, 0, ?)",
    )
    .bind(id_bytes(&new.user))
    .bind(new.custom_id.as_deref())
    .bind(to_nanos(new.created_at))
    .bind(new.token_issued_at.map(to_nanos))
    .execute(&mut **tx)
    .await?;
    Ok(CreatedIdentity {
        record: IdentityRecord {
            user: new.user,
            custom_id: new.custom_id.clone(),
            created_at: new.created_at,
            deleted_at: None,
            generation: 0,
            last_token_issued_at: new.token_issued_at,
        },
        created: true,
    })
}
