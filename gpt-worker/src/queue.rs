//! The queue: claiming jobs with a lease, renewing leases, and the backoff between
//! attempts. On PostgreSQL, claims take rows with `FOR UPDATE SKIP LOCKED`, so any
//! number of workers share one queue and no job runs twice at once; SQLite has a
//! single writer, which gives the same guarantee. A lease that is not renewed
//! expires, and any worker may then take the job over.

use std::time::Duration;

use fabula_contracts::pb::jobs::Job;
use fabula_store::{Backend, Bind, Db, Result, Sql, now_micros};
use rand::Rng;
use sqlx::Row;
use uuid::Uuid;

use crate::store::{COLUMNS, job_from_row};

/// A job this worker now holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub job: Job,
    pub id: Uuid,
    /// The number of the job's last stored update.
    pub last_seq: i64,
    pub cancel_requested: bool,
}

/// Claims up to `limit` jobs for `worker_id`: running ones whose lease has expired
/// (their worker died) first, then queued ones that are due, oldest first. Each claim
/// counts an attempt and starts the output over, as the attempt's RUNNING update tells
/// watchers.
pub async fn claim(db: &Db, worker_id: &str, limit: usize, lease: Duration) -> Result<Vec<Claimed>> {
    let now = now_micros();
    let mut claimed = claim_where(db, worker_id, limit, lease, "state = 'RUNNING' AND lease_expires < ", now).await?;
    if claimed.len() < limit {
        // Two statements rather than one with an OR: this one walks the index on
        // (state, run_after) in order, however long the queue, with nothing to sort.
        let due = "state = 'QUEUED' AND run_after <= ";
        claimed.extend(claim_where(db, worker_id, limit - claimed.len(), lease, due, now).await?);
    }
    Ok(claimed)
}

/// Claims up to `limit` jobs matching `condition` followed by `now`, in `run_after` order.
async fn claim_where(
    db: &Db,
    worker_id: &str,
    limit: usize,
    lease: Duration,
    condition: &str,
    now: i64,
) -> Result<Vec<Claimed>> {
    let mut sql = Sql::new("UPDATE jobs SET state = 'RUNNING', attempts = attempts + 1, output = '', lease_owner = ");
    sql.bind(Bind::Text(worker_id.to_owned()))
        .push(", lease_expires = ")
        .bind(Bind::Int(now + lease.as_micros() as i64))
        .push(", start_time = COALESCE(start_time, ")
        .bind(Bind::Int(now))
        .push(") WHERE id IN (SELECT id FROM jobs WHERE ")
        .push(condition)
        .bind(Bind::Int(now))
        .push(" ORDER BY run_after LIMIT ")
        .bind(Bind::Int(limit as i64));
    if db.backend == Backend::Postgres {
        sql.push(" FOR UPDATE SKIP LOCKED");
    }
    sql.push(&format!(") RETURNING {COLUMNS}, last_seq, cancel_requested"));
    let rows = sql.query().fetch_all(&db.writer).await?;
    rows.iter()
        .map(|row| {
            let job = job_from_row(row)?;
            Ok(Claimed {
                id: job.id.parse().map_err(|_| fabula_store::Error::Internal("bad job id".into()))?,
                job,
                last_seq: row.try_get(15)?,
                cancel_requested: row.try_get::<i64, _>(16)? != 0,
            })
        })
        .collect()
}

/// Extends the leases `worker_id` holds on `running`, the jobs it is running now, and
/// returns those whose owner asked to cancel them. A job it holds but no longer runs
/// (its end could not be recorded) keeps its lease only until it expires; then any
/// worker takes it over.
pub async fn renew_leases(db: &Db, worker_id: &str, running: &[Uuid], lease: Duration) -> Result<Vec<Uuid>> {
    if let Some((first, rest)) = running.split_first() {
        let mut sql = Sql::new("UPDATE jobs SET lease_expires = ");
        sql.bind(Bind::Int(now_micros() + lease.as_micros() as i64))
            .push(" WHERE lease_owner = ")
            .bind(Bind::Text(worker_id.to_owned()))
            .push(" AND state = 'RUNNING' AND id IN (")
            .bind(Bind::Text(first.to_string()));
        for id in rest {
            sql.push(", ").bind(Bind::Text(id.to_string()));
        }
        sql.push(")").query().execute(&db.writer).await?;
    }
    cancel_requests(db, worker_id).await
}

/// The jobs `worker_id` runs whose owner asked to cancel them.
pub async fn cancel_requests(db: &Db, worker_id: &str) -> Result<Vec<Uuid>> {
    let rows = sqlx::query("SELECT id FROM jobs WHERE lease_owner = $1 AND state = 'RUNNING' AND cancel_requested = 1")
        .bind(worker_id)
        .fetch_all(&db.reader)
        .await?;
    Ok(rows.iter().filter_map(|row| row.try_get::<String, _>(0).ok()?.parse().ok()).collect())
}

/// The delay before attempt `attempt + 1` after a transient failure: exponential from
/// `base`, capped at `max`, with "equal" jitter (a random half to all of it, so
/// retries spread out yet keep backing off), and never less than the upstream's
/// `retry_after`.
pub fn backoff(attempt: u32, base: Duration, max: Duration, retry_after: Option<Duration>) -> Duration {
    let exponential = base.saturating_mul(2_u32.saturating_pow(attempt.saturating_sub(1))).min(max);
    let jittered = exponential.mul_f64(rand::rng().random_range(0.5..=1.0));
    retry_after.map_or(jittered, |floor| jittered.max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(8));
        for attempt in 1..=6 {
            let delay = backoff(attempt, base, max, None);
            let ceiling = (base * 2_u32.pow(attempt - 1)).min(max);
            assert!(
                delay <= ceiling && delay >= ceiling / 2,
                "attempt {attempt}: {delay:?} outside {ceiling:?}/2..={ceiling:?}"
            );
        }
        assert!(backoff(1, base, max, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
    }
}
