//! Group commit for SQLite: one task applies every identity write that is waiting in one
//! transaction, so one `fsync` acknowledges a whole batch. It borrows the store's single
//! write connection for each batch, so the store's other (rare) writes queue behind it
//! instead of competing for SQLite's write lock.
//!
//! Each caller gets its answer only after the batch's `COMMIT` returned, so an `Ok` is
//! still durable (`synchronous=FULL`). When a batch fails, its operations are applied
//! again one transaction each, so one bad operation cannot fail its neighbours.
//!
//! Within a batch, each run of consecutive operations of one kind becomes one statement
//! (a multi-row `INSERT`, or an `UPDATE … FROM (VALUES …) RETURNING`): sqlx hands every
//! statement to its SQLite thread and back, and those hand-offs, not SQLite, were most of
//! the cost of a batch of single-row statements.

use std::collections::HashMap;
use std::time::Instant;

use acs_identity_core::id::UserId;
use acs_identity_core::store::{
    CreatedIdentity, IdentityRecord, NewIdentity, StoreError, StoreResult,
};
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{Connection, Sqlite, Transaction};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::{backend, IDENTITY_COLUMNS};
use crate::convert::{identity_from_row, to_nanos};
use crate::StoreMetrics;

/// Most operations committed together.
const MAX_BATCH: usize = 512;
/// Operations waiting for the writer before callers are slowed down.
const QUEUE: usize = 4096;

/// A write the writer applies.
#[derive(Debug)]
pub(crate) enum Op {
    Create(NewIdentity),
    /// Last-token times of many identities, written behind the requests.
    RecordTokensIssued(Vec<(UserId, OffsetDateTime)>),
    Revoke(UserId),
    Delete(UserId, OffsetDateTime),
}

impl Op {
    /// The identity the write is about (none for a batch of token times).
    fn user(&self) -> Option<UserId> {
        match self {
            Op::Create(new) => Some(new.user),
            Op::Revoke(user) | Op::Delete(user, _) => Some(*user),
            Op::RecordTokensIssued(_) => None,
        }
    }
}

/// What a write produced.
#[derive(Debug)]
pub(crate) enum Done {
    Created(CreatedIdentity),
    Record(Option<IdentityRecord>),
    /// Rows updated.
    Count(u64),
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
    /// Starts the writer task on the write pool; each committed batch is reported to
    /// `metrics`.
    pub(crate) fn spawn(pool: SqlitePool, metrics: StoreMetrics) -> Writer {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, rx, metrics));
        Writer { jobs }
    }

    /// Applies `op` and waits for its commit.
    pub(crate) async fn submit(&self, op: Op) -> StoreResult<Done> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { op, reply }).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<Job>, metrics: StoreMetrics) {
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
        let started = Instant::now();
        match apply_all(&mut conn, &batch).await {
            Ok(results) => {
                metrics.commit_seconds.record(started.elapsed().as_secs_f64());
                metrics.commit_batch_size.record(batch.len() as f64);
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
    let mut rest = jobs;
    while let Some(first) = rest.first() {
        let kind = Kind::of(&first.op);
        let len = match kind {
            Kind::Single => 1,
            _ => rest.iter().take_while(|j| Kind::of(&j.op) == kind).count(),
        };
        let (run, tail) = rest.split_at(len);
        if len == 1 {
            out.push(apply(&mut tx, &first.op).await?);
        } else if kind == Kind::Create {
            out.extend(create_run(&mut tx, run).await?);
        } else {
            out.extend(update_run(&mut tx, kind, run).await?);
        }
        rest = tail;
    }
    tx.commit().await?;
    Ok(out)
}

/// Operations that one statement can apply together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A create without a custom id.
    Create,
    Revoke,
    Delete,
    /// Applied on its own (a create with a custom id looks the custom id up first).
    Single,
}

impl Kind {
    fn of(op: &Op) -> Kind {
        match op {
            Op::Create(new) if new.custom_id.is_none() => Kind::Create,
            Op::Create(_) | Op::RecordTokensIssued(_) => Kind::Single,
            Op::Revoke(_) => Kind::Revoke,
            Op::Delete(..) => Kind::Delete,
        }
    }
}

/// Inserts a run of new identities (none with a custom id) with one statement.
async fn create_run(
    tx: &mut Transaction<'_, Sqlite>,
    run: &[Job],
) -> Result<Vec<Done>, sqlx::Error> {
    let news: Vec<&NewIdentity> = run
        .iter()
        .filter_map(|j| match &j.op {
            Op::Create(new) => Some(new),
            _ => None,
        })
        .collect();
    let mut sql = String::from(
        "INSERT INTO identities (user_id, custom_id, created_at, generation, last_token_issued_at) VALUES ",
    );
    for i in 0..news.len() {
        sql.push_str(if i == 0 { "(?, NULL, ?, 0, ?)" } else { ", (?, NULL, ?, 0, ?)" });
    }
    let mut q = sqlx::query(&sql);
    for new in &news {
        q = q
            .bind(id_bytes(&new.user))
            .bind(to_nanos(new.created_at))
            .bind(new.token_issued_at.map(to_nanos));
    }
    q.execute(&mut **tx).await?;
    Ok(news
        .into_iter()
        .map(|new| {
            Done::Created(CreatedIdentity {
                record: IdentityRecord {
                    user: new.user,
                    custom_id: None,
                    created_at: new.created_at,
                    deleted_at: None,
                    generation: 0,
                    last_token_issued_at: new.token_issued_at,
                },
                created: true,
            })
        })
        .collect())
}

/// Applies a run of updates of one kind to live identities with one
/// `UPDATE … FROM (VALUES (user, value), …) RETURNING`; identities it did not match
/// (missing or deleted) are read afterwards. A user named twice gets two generations, or
/// the first deletion time; every operation of the run answers with the
/// row as the run left it, except that the k-th of n revokes of one identity answers with
/// the generation it made (final − n + k), as if they had run one after the other.
async fn update_run(
    tx: &mut Transaction<'_, Sqlite>,
    kind: Kind,
    run: &[Job],
) -> Result<Vec<Done>, sqlx::Error> {
    let mut values: Vec<(UserId, i64)> = Vec::with_capacity(run.len());
    let mut index: HashMap<UserId, usize> = HashMap::with_capacity(run.len());
    for job in run {
        let (user, value) = match &job.op {
            Op::Delete(user, at) => (*user, to_nanos(*at)),
            Op::Revoke(user) => (*user, 1),
            Op::Create(_) | Op::RecordTokensIssued(_) => continue,
        };
        match index.get(&user) {
            Some(&i) => {
                let v = &mut values[i].1;
                if kind == Kind::Revoke {
                    *v += 1;
                }
            }
            None => {
                index.insert(user, values.len());
                values.push((user, value));
            }
        }
    }
    let set = match kind {
        Kind::Revoke => "generation = generation + v.x",
        _ => "deleted_at = v.x",
    };
    let mut sql = String::from("WITH v(id, x) AS (VALUES ");
    for i in 0..values.len() {
        sql.push_str(if i == 0 { "(?, ?)" } else { ", (?, ?)" });
    }
    sql.push_str(&format!(
        ") UPDATE identities SET {set} FROM v WHERE identities.user_id = v.id \
         AND identities.deleted_at IS NULL RETURNING {IDENTITY_COLUMNS}"
    ));
    let mut q = sqlx::query(&sql);
    for (user, value) in &values {
        q = q.bind(id_bytes(user)).bind(*value);
    }
    let mut records: HashMap<UserId, Option<IdentityRecord>> = HashMap::with_capacity(values.len());
    for row in q.fetch_all(&mut **tx).await? {
        let record = identity_from_row(&row).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        records.insert(record.user, Some(record));
    }
    for (user, _) in &values {
        if !records.contains_key(user) {
            records.insert(*user, fetch(tx, *user).await?);
        }
    }
    let mut revokes_seen: HashMap<UserId, i64> = HashMap::new();
    Ok(run
        .iter()
        .filter_map(|job| job.op.user())
        .map(|user| {
            let mut record = records.get(&user).cloned().flatten();
            if let (Kind::Revoke, Some(r)) = (kind, record.as_mut()) {
                let total = index.get(&user).map_or(1, |&i| values[i].1);
                let seen = revokes_seen.entry(user).or_insert(0);
                *seen += 1;
                if r.is_live() {
                    let earlier = u64::try_from(total - *seen).unwrap_or(0);
                    r.generation = r.generation.saturating_sub(earlier);
                }
            }
            Done::Record(record)
        })
        .collect())
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
        Op::RecordTokensIssued(marks) => record_tokens_issued(tx, marks).await.map(Done::Count),
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

/// Most identities in one statement (two bound values each, well below SQLite's limit of
/// 32 766 variables).
const MARKS_PER_STATEMENT: usize = 4096;

/// Sets each live identity's `last_token_issued_at` to the later of its own and the given
/// time, one `UPDATE … FROM (VALUES …)` per `MARKS_PER_STATEMENT` identities.
async fn record_tokens_issued(
    tx: &mut Transaction<'_, Sqlite>,
    marks: &[(UserId, OffsetDateTime)],
) -> Result<u64, sqlx::Error> {
    let mut latest: HashMap<UserId, i64> = HashMap::with_capacity(marks.len());
    for (user, at) in marks {
        let at = to_nanos(*at);
        latest.entry(*user).and_modify(|v| *v = (*v).max(at)).or_insert(at);
    }
    let latest: Vec<(UserId, i64)> = latest.into_iter().collect();
    let mut updated = 0;
    for chunk in latest.chunks(MARKS_PER_STATEMENT) {
        let mut sql = String::from("WITH v(id, x) AS (VALUES ");
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "(?, ?)" } else { ", (?, ?)" });
        }
        sql.push_str(
            ") UPDATE identities SET last_token_issued_at = \
             MAX(COALESCE(identities.last_token_issued_at, v.x), v.x) FROM v \
             WHERE identities.user_id = v.id AND identities.deleted_at IS NULL",
        );
        let mut q = sqlx::query(&sql);
        for (user, at) in chunk {
            q = q.bind(id_bytes(user)).bind(*at);
        }
        updated += q.execute(&mut **tx).await?.rows_affected();
    }
    Ok(updated)
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
