//! Slowing down password guessing, per target: an account, or a login that names no
//! account. Every password check first claims an attempt, which counts as a failure
//! until the password proves right; from the fifth failure in a row the target is
//! locked for 1 s, then 2 s, 4 s, … up to 15 minutes. The lock is set when the attempt
//! is claimed, so a burst of parallel guesses cannot all slip in before the first of
//! them fails. A right password clears the count.
//!
//! An unknown login is counted and locked like an account: both cost the same write
//! and end the same way, so neither the answer nor its time says whether an account
//! exists. Counts not touched for a day are dropped, at most once an hour.

use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::Duration,
};

use fabula_runtime::errors;
use sqlx::{Any, Executor, Row};
use uuid::Uuid;

use fabula_store::{
    db::{Db, now_micros},
    error::{Error, Result},
};

/// Failures in a row allowed before the target locks.
const FREE_FAILURES: i64 = 4;
/// The longest lock.
const MAX_LOCK: Duration = Duration::from_mins(15);
/// How long an untouched count is kept.
const FORGET_AFTER_MICROS: i64 = 86_400_000_000;
/// How often stale counts are looked for at most.
const SWEEP_EVERY_MICROS: i64 = 3_600_000_000;

/// What guesses are counted against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// An account, however it was named (username or email).
    Account(Uuid),
    /// A login naming no account, as its key (lower case, trimmed).
    Unknown(&'a str),
}

impl Target<'_> {
    fn key(&self) -> String {
        match self {
            Self::Account(id) => format!("user:{id}"),
            Self::Unknown(login) => format!("login:{login}"),
        }
    }
}

/// How long the target stays locked after `failures` failures in a row:
/// nothing for the first four, then min(2^(failures − 5) s, 15 min).
pub fn lock_after(failures: i64) -> Option<Duration> {
    let beyond_free = failures.checked_sub(FREE_FAILURES + 1).filter(|n| *n >= 0)?;
    let seconds = u32::try_from(beyond_free).ok().and_then(|n| 1u64.checked_shl(n)).unwrap_or(u64::MAX);
    Some(Duration::from_secs(seconds).min(MAX_LOCK))
}

/// Claims a password check against `target`, or RESOURCE_EXHAUSTED (with a RetryInfo)
/// while it is locked.
pub async fn claim_attempt(db: &Db, target: &Target<'_>) -> Result<()> {
    let now = now_micros();
    sweep_stale(db, now).await?;
    let key = target.key();
    let mut tx = db.begin().await?;
    let claimed = sqlx::query(
        "INSERT INTO login_throttle (target, failures, locked_until, last_failure) VALUES ($1, 1, 0, $2) \
         ON CONFLICT (target) DO UPDATE SET failures = login_throttle.failures + 1, last_failure = $2 \
         WHERE login_throttle.locked_until <= $2 \
         RETURNING failures",
    )
    .bind(&key)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(claimed) = claimed else {
        let locked_until: i64 = sqlx::query("SELECT locked_until FROM login_throttle WHERE target = $1")
            .bind(&key)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        return Err(throttled(locked_until.saturating_sub(now)));
    };
    if let Some(lock) = lock_after(claimed.try_get(0)?) {
        let until = now.saturating_add(i64::try_from(lock.as_micros()).unwrap_or(i64::MAX));
        sqlx::query("UPDATE login_throttle SET locked_until = $1 WHERE target = $2")
            .bind(until)
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        tracing::info!(target = ?key, lock_seconds = lock.as_secs(), "sign-ins locked after failed password checks");
    }
    tx.commit().await?;
    Ok(())
}

/// Forgets the failures against account `id`: its password was right, or replaced.
pub async fn clear_failures<'e>(executor: impl Executor<'e, Database = Any>, id: Uuid) -> Result<()> {
    sqlx::query("DELETE FROM login_throttle WHERE target = $1")
        .bind(Target::Account(id).key())
        .execute(executor)
        .await?;
    Ok(())
}

/// Drops the counts untouched for a day, when the last sweep was an hour ago or more.
async fn sweep_stale(db: &Db, now: i64) -> Result<()> {
    static LAST_SWEEP: AtomicI64 = AtomicI64::new(0);
    let last = LAST_SWEEP.load(Ordering::Relaxed);
    if now - last < SWEEP_EVERY_MICROS
        || LAST_SWEEP.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
    {
        return Ok(());
    }
    sqlx::query("DELETE FROM login_throttle WHERE last_failure < $1 AND locked_until < $2")
        .bind(now - FORGET_AFTER_MICROS)
        .bind(now)
        .execute(&db.writer)
        .await?;
    Ok(())
}

/// RESOURCE_EXHAUSTED telling to retry in `micros` (rounded up to whole seconds).
fn throttled(micros: i64) -> Error {
    let seconds = u64::try_from(micros.max(1)).unwrap_or(1).div_ceil(1_000_000);
    let message = format!("too many failed sign-ins with this login; try again in {seconds} s");
    errors::exhausted("LOGIN_THROTTLED", message, Duration::from_secs(seconds)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_from_the_fifth_failure_up_to_fifteen_minutes() {
        let cases = [
            (0, None, "no failures"),
            (4, None, "four failures are free"),
            (5, Some(1), "the fifth failure locks for a second"),
            (6, Some(2), "then the lock doubles"),
            (10, Some(32), "2^5 s at the tenth"),
            (14, Some(512), "2^9 s at the fourteenth"),
            (15, Some(900), "2^10 s is more than 15 min"),
            (1_000, Some(900), "no overflow far out"),
            (i64::MAX, Some(900), "no overflow at the end"),
            (-3, None, "a negative count locks nothing"),
        ];
        for (failures, seconds, why) in cases {
            assert_eq!(lock_after(failures), seconds.map(Duration::from_secs), "{failures} failures: {why}");
        }
    }

    #[test]
    fn retry_after_rounds_up_to_seconds() {
        let retry = |micros| throttled(micros).to_string();
        assert!(retry(1).contains("in 1 s"), "{}", retry(1));
        assert!(retry(1_500_000).contains("in 2 s"), "{}", retry(1_500_000));
        assert!(retry(-5).contains("in 1 s"), "a lock that just ended still says 1 s");
    }
}
