//! Job rows: how a job is stored, read back and listed, and the changes a caller
//! asks for (create within the owner's limits, cancel, delete); a job's numbered
//! updates and the model answers its runs saved.

use base64::{Engine, engine::general_purpose::STANDARD};
use fabula_contracts::pb::jobs::{
    Job, JobError, JobResult, JobSpec, JobState, JobUpdate, Progress, job_spec::Kind, job_update,
};
use fabula_runtime::errors;
use fabula_store::{
    Bind, Db, Error, Key, Listing, Page, Result, Sql,
    error::{invalid, not_found},
    filter, now_micros, timestamp,
};
use prost::Message;
use sqlx::{Any, Executor, Row, any::AnyRow};
use tonic::Code;
use uuid::Uuid;

use crate::config::QueueSettings;

pub const COLUMNS: &str = "id, owner_id, spec, state, progress_percent, progress_message, output, result, \
     error_code, error_message, attempts, max_attempts, create_time, start_time, end_time";

/// ListJobs as its request declares it, and the columns of its filter fields.
pub const LISTING: Listing = Listing {
    page_size: &fabula_runtime::rules::jobs::list_jobs_request::PAGE_SIZE,
    page_token: &fabula_runtime::rules::jobs::list_jobs_request::PAGE_TOKEN,
    filter: &fabula_runtime::rules::jobs::list_jobs_request::FILTER,
    columns: &[("state", "state"), ("kind", "kind"), ("owner_id", "owner_id")],
};

/// The names of the job kinds, as stored and filtered on.
pub const KIND_NAMES: &[&str] =
    &["describe_world", "describe_story", "analyze_story", "batch_analyze", "extract_events", "paraphrase"];

/// The stored name of a spec's kind.
pub fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::DescribeWorld(_) => "describe_world",
        Kind::DescribeStory(_) => "describe_story",
        Kind::AnalyzeStory(_) => "analyze_story",
        Kind::BatchAnalyze(_) => "batch_analyze",
        Kind::ExtractEvents(_) => "extract_events",
        Kind::Paraphrase(_) => "paraphrase",
    }
}

/// A protobuf message as stored in a text column.
pub fn encode(message: &impl Message) -> String {
    STANDARD.encode(message.encode_to_vec())
}

/// A message stored by [`encode`].
pub fn decode<M: Message + Default>(text: &str) -> Result<M> {
    let bytes = STANDARD.decode(text).map_err(|e| Error::Internal(format!("stored message: {e}")))?;
    M::decode(bytes.as_slice()).map_err(|e| Error::Internal(format!("stored message: {e}")))
}

pub fn job_from_row(row: &AnyRow) -> Result<Job> {
    let error_code: Option<String> = row.try_get(8)?;
    let result: Option<String> = row.try_get(7)?;
    let start: Option<i64> = row.try_get(13)?;
    let end: Option<i64> = row.try_get(14)?;
    Ok(Job {
        id: row.try_get(0)?,
        owner_id: row.try_get(1)?,
        spec: Some(decode::<JobSpec>(&row.try_get::<String, _>(2)?)?),
        state: JobState::from_str_name(&row.try_get::<String, _>(3)?).unwrap_or(JobState::Queued).into(),
        progress: Some(Progress { percent: row.try_get::<i64, _>(4)? as i32, message: row.try_get(5)? }),
        output: row.try_get(6)?,
        result: result.as_deref().map(decode::<JobResult>).transpose()?,
        error: error_code.map(|code| Ok::<_, Error>(JobError { code, message: row.try_get(9)? })).transpose()?,
        attempts: row.try_get::<i64, _>(10)? as i32,
        max_attempts: row.try_get::<i64, _>(11)? as i32,
        create_time: Some(timestamp(row.try_get(12)?)),
        start_time: start.map(timestamp),
        end_time: end.map(timestamp),
    })
}

/// Job `id` as stored.
pub async fn fetch<'e>(executor: impl Executor<'e, Database = Any>, id: Uuid) -> Result<Option<Job>> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(executor).await?;
    row.as_ref().map(job_from_row).transpose()
}

/// Queues `spec` for `owner`, within their limits; with a `request_id` used before,
/// returns the job it made then.
pub async fn create(
    db: &Db,
    limits: &QueueSettings,
    owner: Uuid,
    spec: JobSpec,
    request_id: Option<&str>,
) -> Result<Job> {
    let kind = spec.kind.as_ref().map(kind_name).ok_or_else(|| invalid("spec", "must name a job kind"))?;
    let mut tx = db.begin().await?;
    if let Some(request_id) = request_id
        && let Some(first) = find_by_request(&mut tx, owner, request_id).await?
    {
        return Ok(first);
    }
    check_limits(&mut tx, limits, owner).await?;
    let (id, now) = (Uuid::now_v7(), now_micros());
    let sql = format!(
        "INSERT INTO jobs (id, owner_id, kind, spec, state, max_attempts, run_after, request_id, create_time) \
         VALUES ($1, $2, $3, $4, 'QUEUED', $5, $6, $7, $6) RETURNING {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .bind(owner.to_string())
        .bind(kind)
        .bind(encode(&spec))
        .bind(i64::from(limits.max_attempts))
        .bind(now)
        .bind(request_id)
        .fetch_one(&mut *tx)
        .await?;
    let job = job_from_row(&row)?;
    tx.commit().await?;
    Ok(job)
}

async fn find_by_request(
    tx: &mut sqlx::Transaction<'static, Any>,
    owner: Uuid,
    request_id: &str,
) -> Result<Option<Job>> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE owner_id = $1 AND request_id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(owner.to_string())
        .bind(request_id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(job_from_row).transpose()
}

/// RESOURCE_EXHAUSTED when `owner` has too many active jobs or made too many in their
/// current 24-hour window; otherwise counts this create (a refusal rolls the count
/// back with its transaction). Counting locks the owner's row first, so concurrent
/// creates are checked one at a time.
async fn check_limits(tx: &mut sqlx::Transaction<'static, Any>, limits: &QueueSettings, owner: Uuid) -> Result<()> {
    let creates = count_create(tx, owner).await?;
    // Matches the partial index `jobs_owner_active`.
    let row = sqlx::query("SELECT COUNT(*) FROM jobs WHERE owner_id = $1 AND state IN ('QUEUED', 'RUNNING')")
        .bind(owner.to_string())
        .fetch_one(&mut **tx)
        .await?;
    let active: i64 = row.try_get(0)?;
    if active >= limits.active_jobs_per_user {
        let message = format!("you have {active} jobs queued or running; wait for one to finish or cancel one");
        return Err(errors::status(Code::ResourceExhausted, "TOO_MANY_ACTIVE_JOBS", message).into());
    }
    if creates > limits.daily_jobs_per_user {
        let made = creates - 1;
        let message = format!("you have made {made} jobs in the last 24 hours, the most allowed");
        return Err(errors::status(Code::ResourceExhausted, "DAILY_JOB_QUOTA_EXCEEDED", message).into());
    }
    Ok(())
}

/// Counts a create of `owner` in their 24-hour window (a new window when the last one
/// is over) and returns the window's creates, this one included.
async fn count_create(tx: &mut sqlx::Transaction<'static, Any>, owner: Uuid) -> Result<i64> {
    let now = now_micros();
    let row = sqlx::query(
        "INSERT INTO job_owners (owner_id, creates, window_start) VALUES ($1, 1, $2) \
         ON CONFLICT (owner_id) DO UPDATE SET \
         creates = CASE WHEN job_owners.window_start <= $3 THEN 1 ELSE job_owners.creates + 1 END, \
         window_start = CASE WHEN job_owners.window_start <= $3 THEN $2 ELSE job_owners.window_start END \
         RETURNING creates",
    )
    .bind(owner.to_string())
    .bind(now)
    .bind(now - 86_400_000_000)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get(0)?)
}

/// A page of jobs, newest first: `owner`'s, or everyone's when `owner` is `None`.
pub async fn list(db: &Db, owner: Option<Uuid>, page: &Page, filter_text: &str) -> Result<(Vec<Job>, String, i64)> {
    let mut condition = Sql::new(" WHERE 1 = 1");
    if let Some(owner) = owner {
        condition.push(" AND owner_id = ").bind(Bind::Text(owner.to_string()));
    }
    filter::apply(filter_text, &LISTING, &mut condition)?;
    let count = Sql::select("SELECT COUNT(*) FROM jobs", &condition);
    let mut select = Sql::select(&format!("SELECT {COLUMNS} FROM jobs"), &condition);
    if let Some([Key::Text(after)]) = page.after_like(&[Key::Text(String::new())])? {
        select.push(" AND id < ").bind(Bind::Text(after.clone()));
    }
    select.push(" ORDER BY id DESC LIMIT ").bind(Bind::Int(page.fetch_limit()));
    let total: i64 = count.query().fetch_one(&db.reader).await?.try_get(0)?;
    let rows = select.query().fetch_all(&db.reader).await?;
    let jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
    let (jobs, next) = page.finish(jobs, |job| vec![Key::Text(job.id.clone())]);
    Ok((jobs, next, total))
}

/// What a cancel did.
pub enum Cancelled {
    /// The job was queued and is now CANCELLED.
    Now,
    /// The job is running; its runner was asked to stop.
    Requested,
    /// The job had finished already.
    AlreadyFinished,
}

/// Cancels job `id`: at once when queued (recording its final update), by request
/// when running.
pub async fn cancel(db: &Db, id: Uuid) -> Result<Cancelled> {
    let mut tx = db.begin().await?;
    let cancelled = sqlx::query(
        "UPDATE jobs SET state = 'CANCELLED', end_time = $2, last_seq = last_seq + 1 \
         WHERE id = $1 AND state = 'QUEUED' RETURNING last_seq",
    )
    .bind(id.to_string())
    .bind(now_micros())
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = cancelled {
        let seq: i64 = row.try_get(0)?;
        let job = fetch(&mut *tx, id).await?.ok_or_else(|| Error::Internal("a job vanished".into()))?;
        let update = JobUpdate { seq, kind: Some(job_update::Kind::Finished(Box::new(job))) };
        insert_update(&mut tx, id, &update).await?;
        tx.commit().await?;
        return Ok(Cancelled::Now);
    }
    drop(tx);
    let running = sqlx::query("UPDATE jobs SET cancel_requested = 1 WHERE id = $1 AND state = 'RUNNING'")
        .bind(id.to_string())
        .execute(&db.writer)
        .await?
        .rows_affected();
    Ok(if running == 1 { Cancelled::Requested } else { Cancelled::AlreadyFinished })
}

/// Records one numbered update of job `id`; a number recorded already is kept as it was.
pub async fn insert_update(tx: &mut sqlx::Transaction<'static, Any>, id: Uuid, update: &JobUpdate) -> Result<()> {
    insert_updates(tx, &[(id, update)]).await
}

/// Rows of updates one INSERT carries at most (three values each).
const UPDATES_PER_INSERT: usize = 300;

/// Records numbered updates of jobs, many rows per statement; a number recorded
/// already is kept as it was.
pub async fn insert_updates(tx: &mut sqlx::Transaction<'static, Any>, updates: &[(Uuid, &JobUpdate)]) -> Result<()> {
    for chunk in updates.chunks(UPDATES_PER_INSERT) {
        let mut sql = Sql::new("INSERT INTO job_updates (job_id, seq, payload) VALUES ");
        for (i, (id, update)) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.bind(Bind::Text(id.to_string())).push(", ").bind(Bind::Int(update.seq)).push(", ");
            sql.bind(Bind::Text(encode(*update))).push(")");
        }
        sql.push(" ON CONFLICT (job_id, seq) DO NOTHING");
        sql.query().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The answer a run of job `id` saved for `step`, if any.
pub async fn saved_answer(db: &Db, id: Uuid, step: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT answer FROM job_answers WHERE job_id = $1 AND step = $2")
        .bind(id.to_string())
        .bind(step)
        .fetch_optional(&db.reader)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: String = row.try_get(0)?;
    serde_json::from_str(&stored).map(Some).map_err(|e| Error::Internal(format!("stored answer: {e}")))
}

/// Saves `answer` as job `id`'s answer for `step`, replacing one saved before. It is
/// stored as a JSON string, exactly as the model wrote it: PostgreSQL's text cannot
/// hold the NUL characters a model may write, their JSON escapes it can.
pub async fn save_answer(tx: &mut sqlx::Transaction<'static, Any>, id: Uuid, step: &str, answer: &str) -> Result<()> {
    let stored = serde_json::to_string(answer).map_err(|e| Error::Internal(format!("answer: {e}")))?;
    sqlx::query(
        "INSERT INTO job_answers (job_id, step, answer) VALUES ($1, $2, $3) \
         ON CONFLICT (job_id, step) DO UPDATE SET answer = excluded.answer",
    )
    .bind(id.to_string())
    .bind(step)
    .bind(stored)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Jobs `ids` as stored, in no particular order.
pub async fn fetch_many(tx: &mut sqlx::Transaction<'static, Any>, ids: &[Uuid]) -> Result<Vec<Job>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM jobs WHERE id IN ("));
    for (i, id) in ids.iter().enumerate() {
        sql.push(if i == 0 { "" } else { ", " }).bind(Bind::Text(id.to_string()));
    }
    sql.push(")");
    sql.query().fetch_all(&mut **tx).await?.iter().map(job_from_row).collect()
}

/// The updates of job `id` numbered after `after_seq`, in order, at most `limit`.
pub async fn updates_after(db: &Db, id: Uuid, after_seq: i64, limit: i64) -> Result<Vec<JobUpdate>> {
    let rows = sqlx::query("SELECT payload FROM job_updates WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3")
        .bind(id.to_string())
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&db.reader)
        .await?;
    rows.iter().map(|row| decode::<JobUpdate>(&row.try_get::<String, _>(0)?)).collect()
}

/// Deletes finished job `id`, its updates and its saved answers (by cascade).
pub async fn delete(db: &Db, id: Uuid) -> Result<()> {
    let deleted = sqlx::query("DELETE FROM jobs WHERE id = $1 AND state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')")
        .bind(id.to_string())
        .execute(&db.writer)
        .await?
        .rows_affected();
    if deleted == 0 {
        let exists = fetch(&db.reader, id).await?.is_some();
        return Err(if exists {
            errors::status(Code::FailedPrecondition, "JOB_NOT_FINISHED", "cancel the job before deleting it").into()
        } else {
            not_found("job")
        });
    }
    Ok(())
}

/// Removes jobs that finished before `cutoff` (micros), with their updates and saved
/// answers; returns how many.
pub async fn remove_finished_before(db: &Db, cutoff: i64) -> Result<u64> {
    let removed = sqlx::query("DELETE FROM jobs WHERE end_time < $1 AND state IN ('SUCCEEDED', 'FAILED', 'CANCELLED')")
        .bind(cutoff)
        .execute(&db.writer)
        .await?
        .rows_affected();
    Ok(removed)
}
