//! Slowing down password guessing, per account. Every password check first claims
//! an attempt, which counts as a failure until the password proves right; from the
//! fifth failure in a row the account is locked for 1 s, then 2 s, 4 s, … up to
//! 15 minutes. The lock is set when the attempt is claimed, so a burst of parallel
//! guesses cannot all slip in before the first of them fails. A right password
//! clears the count.
//!
//! An unknown login is never locked, so locking does show that an account exists
//! to someone who fails five times; the lock itself is what makes guessing slow.

use std::time::Duration;

use fabula_proto::errors;
use sqlx::{Any, Executor, Row};
use uuid::Uuid;

use crate::{
    db::{Db, now_micros},
    error::{Error, Result},
};

/// Failures in a row allowed before the account locks.
const FREE_FAILURES: i64 = 4;
/// The longest lock.
const MAX_LOCK: Duration = Duration::from_mins(15);

/// How long the account stays locked after `failures` failures in a row:
/// nothing for the first four, then min(2^(failures − 5) s, 15 min).
pub fn lock_after(failures: i64) -> Option<Duration> {
    let beyond_free = failures.checked_sub(FREE_FAILURES + 1).filter(|n| *n >= 0)?;
    let seconds = u32::try_from(beyond_free).ok().and_then(|n| 1u64.checked_shl(n)).unwrap_or(u64::MAX);
    Some(Duration::from_secs(seconds).min(MAX_LOCK))
}

/// Claims a password check for user `id`, or RESOURCE_EXHAUSTED (with a RetryInfo)
/// while the account is locked.
pub async fn claim_attempt(db: &Db, id: Uuid) -> Result<()> {
    let now = now_micros();
    let mut tx = db.begin().await?;
    let claimed = sqlx::query(
        "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 AND locked_until <= $2 \
         RETURNING failed_logins",
    )
    .bind(id.to_string())
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(claimed) = claimed else {
        let locked_until = sqlx::query("SELECT locked_until FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get::<i64, _>(0))
            .transpose()?
            .unwrap_or(now);
        return Err(throttled(locked_until.saturating_sub(now)));
    };
    if let Some(lock) = lock_after(claimed.try_get(0)?) {
        let until = now.saturating_add(i64::try_from(lock.as_micros()).unwrap_or(i64::MAX));
        sqlx::query("UPDATE users SET locked_until = $1 WHERE id = $2")
            .bind(until)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tracing::info!(user_id = %id, lock_seconds = lock.as_secs(), "account locked after failed password checks");
    }
    tx.commit().await?;
    Ok(())
}

/// Forgets the failures of user `id`: their password was right.
pub async fn clear_failures<'e>(executor: impl Executor<'e, Database = Any>, id: Uuid) -> Result<()> {
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = $1")
        .bind(id.to_string())
        .execute(executor)
        .await?;
    Ok(())
}

/// RESOURCE_EXHAUSTED telling to retry in `micros` (rounded up to whole seconds).
fn throttled(micros: i64) -> Error {
    let seconds = u64::try_from(micros.max(1)).unwrap_or(1).div_ceil(1_000_000);
    let message = format!("too many failed sign-ins for this account; try again in {seconds} s");
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
