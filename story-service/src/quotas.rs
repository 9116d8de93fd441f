//! Quotas of PUBLIC worlds and stories per role. The check runs inside the write
//! transaction after locking the owner's row, so concurrent publishes cannot both
//! slip under the limit.

use fabula_contracts::pb::accounts::Role;
use fabula_runtime::auth::Principal;
use fabula_store::error::{Result, quota_exceeded};
use sqlx::{Any, Row, Transaction};
use uuid::Uuid;

use crate::config::Quotas;

/// What a quota counts.
#[derive(Clone, Copy, Debug)]
pub enum Public {
    Worlds,
    Stories,
}

impl Public {
    fn table(self) -> &'static str {
        match self {
            Self::Worlds => "worlds",
            Self::Stories => "stories",
        }
    }

    /// The most a `role` may have; none for administrators.
    pub fn limit(self, quotas: &Quotas, role: Role) -> Option<i64> {
        match (self, role) {
            (_, Role::Admin) => None,
            (Self::Worlds, Role::Moderator) => Some(quotas.public_worlds_moderator),
            (Self::Worlds, _) => Some(quotas.public_worlds_user),
            (Self::Stories, Role::Moderator) => Some(quotas.public_stories_moderator),
            (Self::Stories, _) => Some(quotas.public_stories_user),
        }
    }
}

/// User `id` with their current role: the owner a change to their resource counts
/// against, when someone else (a co-author, an administrator) makes it.
pub async fn owner(tx: &mut Transaction<'static, Any>, id: Uuid) -> Result<Principal> {
    let role: String = sqlx::query("SELECT role FROM users WHERE id = $1")
        .bind(id.to_string())
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    Ok(Principal { user_id: id, role: Role::from_str_name(&role).unwrap_or(Role::User), job_id: None })
}

/// QUOTA_EXCEEDED when `owner` already has as many public `what` as their role
/// allows, not counting `except` (the row being made public).
pub async fn check_public(
    tx: &mut Transaction<'static, Any>,
    quotas: &Quotas,
    owner: &Principal,
    what: Public,
    except: Uuid,
) -> Result<()> {
    let Some(limit) = what.limit(quotas, owner.role) else {
        return Ok(());
    };
    // Takes the owner's row lock on PostgreSQL; SQLite has a single writer already.
    sqlx::query("UPDATE users SET quota_lock = quota_lock + 1 WHERE id = $1")
        .bind(owner.user_id.to_string())
        .execute(&mut **tx)
        .await?;
    let sql =
        format!("SELECT COUNT(*) FROM {} WHERE owner_id = $1 AND visibility = 'PUBLIC' AND id <> $2", what.table());
    let count: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(owner.user_id.to_string())
        .bind(except.to_string())
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    if count >= limit {
        let noun = match what {
            Public::Worlds => "public worlds",
            Public::Stories => "public stories",
        };
        return Err(quota_exceeded(format!("your role may have at most {limit} {noun}; make one private first")));
    }
    Ok(())
}
