//! StatsService: a writer's counts and quotas, and the site's counts for
//! administrators. Each count is one indexed query (migration 0006 adds the indexes):
//! a writer's rows are found by owner and counted from the index alone, the words
//! summed from the `word_count` kept on write; the site's stories and worlds are
//! counted by visibility from an index, never by reading the stories. No counters to
//! drift, and no hot row that every create of the site would queue on.

use fabula_contracts::pb::story::{
    GetMyStatsRequest, GetSiteStatsRequest, MyStats, Quota, SiteStats, VisibilityCounts,
    stats_service_server::StatsService,
};
use fabula_runtime::auth::{Caller, Principal, caller};
use fabula_store::{db::now_micros, error::Result};
use sqlx::{AnyConnection, Row};
use tonic::{Request, Response, Status};

use crate::{State, accounts::require_admin, config::Quotas, quotas::Public};

/// How far back "new users" look.
const NEW_USER_DAYS: i64 = 7;

pub struct StatsApi(pub State);

/// Rows of `(visibility, count)` as counts by visibility.
fn by_visibility(rows: &[(String, i64)]) -> VisibilityCounts {
    let count = |name: &str| rows.iter().filter(|(v, _)| v == name).map(|(_, n)| n).sum();
    let (draft, private, public) = (count("DRAFT"), count("PRIVATE"), count("PUBLIC"));
    VisibilityCounts { draft, private, public, total: rows.iter().map(|(_, n)| n).sum() }
}

/// The `what` quota of `owner`, who has `used` of it.
fn quota(quotas: &Quotas, owner: &Principal, what: Public, used: i64) -> Quota {
    match what.limit(quotas, owner.role) {
        Some(limit) => Quota { used, limit, left: (limit - used).max(0), unlimited: false },
        None => Quota { used, unlimited: true, ..Quota::default() },
    }
}

/// `(visibility, count)` of the rows `sql` groups, bound to `user`.
async fn counts(conn: &mut AnyConnection, sql: &'static str, user: Option<&str>) -> Result<Vec<(String, i64)>> {
    let query = sqlx::query(sql);
    let query = match user {
        Some(user) => query.bind(user.to_owned()),
        None => query,
    };
    let rows = query.fetch_all(&mut *conn).await?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
}

/// One `COUNT(*)` of rows bound to `user`.
async fn count(conn: &mut AnyConnection, sql: &'static str, user: &str) -> Result<i64> {
    Ok(sqlx::query(sql).bind(user.to_owned()).fetch_one(&mut *conn).await?.try_get(0)?)
}

impl StatsApi {
    async fn mine(&self, caller: &Caller) -> Result<MyStats> {
        let me = *caller.require_user()?;
        let user = me.user_id.to_string();
        let mut conn = self.0.db.reader.acquire().await?;
        let worlds_sql = "SELECT visibility, COUNT(*) FROM worlds WHERE owner_id = $1 GROUP BY visibility";
        let worlds = by_visibility(&counts(&mut conn, worlds_sql, Some(&user)).await?);
        let stories = by_visibility(
            &counts(
                &mut conn,
                "SELECT visibility, COUNT(*) FROM stories WHERE owner_id = $1 GROUP BY visibility",
                Some(&user),
            )
            .await?,
        );
        let words = count(
            &mut conn,
            "SELECT CAST(COALESCE(SUM(word_count), 0) AS BIGINT) FROM stories WHERE owner_id = $1",
            &user,
        )
        .await?;
        let entities = "SELECT COUNT(*) FROM entities e JOIN worlds w ON w.id = e.world_id WHERE w.owner_id = $1";
        let events = "SELECT COUNT(*) FROM events e JOIN worlds w ON w.id = e.world_id WHERE w.owner_id = $1";
        let quotas = &self.0.settings.quotas;
        Ok(MyStats {
            entities: count(&mut conn, entities, &user).await?,
            events: count(&mut conn, events, &user).await?,
            words,
            public_worlds: Some(quota(quotas, &me, Public::Worlds, worlds.public)),
            public_stories: Some(quota(quotas, &me, Public::Stories, stories.public)),
            worlds: Some(worlds),
            stories: Some(stories),
        })
    }

    async fn site(&self, caller: &Caller) -> Result<SiteStats> {
        require_admin(caller)?;
        let mut conn = self.0.db.reader.acquire().await?;
        let rows = sqlx::query("SELECT role, disabled, COUNT(*) FROM users GROUP BY role, disabled")
            .fetch_all(&mut *conn)
            .await?;
        let mut stats = SiteStats::default();
        for row in &rows {
            let (role, disabled, n): (String, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            *stats.users_by_role.entry(role).or_default() += n;
            if disabled == 0 { stats.active_users += n } else { stats.disabled_users += n }
        }
        let since = now_micros() - NEW_USER_DAYS * 24 * 3600 * 1_000_000;
        stats.new_users_last_7_days = sqlx::query("SELECT COUNT(*) FROM users WHERE create_time >= $1")
            .bind(since)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        let worlds = counts(&mut conn, "SELECT visibility, COUNT(*) FROM worlds GROUP BY visibility", None).await?;
        let stories = counts(&mut conn, "SELECT visibility, COUNT(*) FROM stories GROUP BY visibility", None).await?;
        stats.worlds = Some(by_visibility(&worlds));
        stats.stories = Some(by_visibility(&stories));
        Ok(stats)
    }
}

#[tonic::async_trait]
impl StatsService for StatsApi {
    async fn get_my_stats(&self, request: Request<GetMyStatsRequest>) -> Result<Response<MyStats>, Status> {
        Ok(Response::new(self.mine(&caller(&request)).await?))
    }

    async fn get_site_stats(&self, request: Request<GetSiteStatsRequest>) -> Result<Response<SiteStats>, Status> {
        Ok(Response::new(self.site(&caller(&request)).await?))
    }
}
