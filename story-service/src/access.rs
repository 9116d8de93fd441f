//! Who may see and change what. Every authorisation decision of story-service is
//! made here: handlers ask, this module answers.
//!
//! - A PUBLIC world is readable by anyone; DRAFT and PRIVATE ones by their owner and
//!   the users they are shared with. Administrators read, edit and delete anything.
//! - Owners and co-authors create and edit a world's children; readers only read.
//! - Only the owner (or an administrator) edits, deletes or shares the world itself.
//! - A story is readable when its world is and, unless it is PUBLIC, by the world's
//!   owner and shares and the story's own author.
//! - Not readable is NOT_FOUND, so existence never leaks; readable but not
//!   writable is PERMISSION_DENIED.

use fabula_contracts::pb::story::{ShareRole, Visibility};
use fabula_runtime::auth::Caller;
use sqlx::{Any, Executor, Row, any::AnyRow};
use uuid::Uuid;

use fabula_store::{
    error::{Result, denied, not_found},
    pagination::{Bind, Sql},
};

/// The caller's relation to a world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    Owner,
    CoAuthor,
    Reader,
    /// No relation: only what is public.
    Stranger,
}

/// What the caller may do with one world and its children.
#[derive(Clone, Copy, Debug)]
pub struct WorldAccess {
    pub world_id: Uuid,
    pub owner_id: Uuid,
    pub relation: Relation,
    pub visibility: Visibility,
    pub admin: bool,
}

impl WorldAccess {
    /// Whether the caller may read the world (and its public children).
    pub fn can_read(&self) -> bool {
        self.admin || self.relation != Relation::Stranger || self.visibility == Visibility::Public
    }

    /// Whether the caller reads every child, whatever its own visibility.
    pub fn reads_everything(&self) -> bool {
        self.admin || self.relation != Relation::Stranger
    }

    /// NOT_FOUND unless the world is readable.
    pub fn require_read(&self) -> Result<()> {
        if self.can_read() { Ok(()) } else { Err(not_found("world")) }
    }

    /// May create, edit and delete the world's stories, entities, locations and events.
    pub fn require_write_children(&self) -> Result<()> {
        self.require_read()?;
        match self.relation {
            _ if self.admin => Ok(()),
            Relation::Owner | Relation::CoAuthor => Ok(()),
            _ => Err(denied("only the world's owner and co-authors may change what is in it")),
        }
    }

    /// May edit, delete or share the world itself.
    pub fn require_owner(&self) -> Result<()> {
        self.require_read()?;
        if self.admin || self.relation == Relation::Owner {
            Ok(())
        } else {
            Err(denied("only the world's owner may do this"))
        }
    }

    /// Whether a story of this world, with `visibility` and written by `author`, is
    /// readable by the caller.
    pub fn can_read_story(&self, caller: &Caller, visibility: Visibility, author: Uuid) -> bool {
        self.can_read()
            && (visibility == Visibility::Public || self.reads_everything() || caller.user_id() == Some(author))
    }

    /// Appends ` AND …` keeping the stories of this world (a `stories` row aliased
    /// `t`) the caller may read, as [`WorldAccess::can_read_story`] decides one at a
    /// time. The world itself must be readable: check that first.
    pub fn push_readable_stories(&self, caller: &Caller, sql: &mut Sql) {
        if self.reads_everything() {
            return;
        }
        let me = caller.user_id().map(|id| id.to_string()).unwrap_or_default();
        sql.push(" AND (t.visibility = 'PUBLIC' OR t.owner_id = ").bind(Bind::Text(me)).push(")");
    }
}

/// The columns [`access_from_row`] reads, from a query that joins [`WORLD_ACCESS_JOIN`].
pub const WORLD_ACCESS_COLUMNS: &str = "w.owner_id, w.visibility, s.role";
/// Joins the caller's share (placeholder `$2`) of world `w`.
pub const WORLD_ACCESS_JOIN: &str = " LEFT JOIN world_shares s ON s.world_id = w.id AND s.user_id = $2";

/// The caller's access to world `world_id`; NOT_FOUND when there is no such world.
/// Readability is not checked here: call one of the `require_*` methods.
pub async fn world_access<'e, E>(executor: E, caller: &Caller, world_id: Uuid) -> Result<WorldAccess>
where
    E: Executor<'e, Database = Any>,
{
    let sql = format!("SELECT {WORLD_ACCESS_COLUMNS} FROM worlds w{WORLD_ACCESS_JOIN} WHERE w.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(world_id.to_string())
        .bind(caller_key(caller))
        .fetch_optional(executor)
        .await?
        .ok_or_else(|| not_found("world"))?;
    access_from_row(&row, 0, caller, world_id)
}

/// The value bound to `$2` of [`WORLD_ACCESS_JOIN`]: the caller's id, or nothing.
pub fn caller_key(caller: &Caller) -> String {
    caller.user_id().map(|id| id.to_string()).unwrap_or_default()
}

/// The caller's access to world `world_id`, from [`WORLD_ACCESS_COLUMNS`] read from
/// index `first` of `row`.
pub fn access_from_row(row: &AnyRow, first: usize, caller: &Caller, world_id: Uuid) -> Result<WorldAccess> {
    let owner: String = row.try_get(first)?;
    let visibility: String = row.try_get(first + 1)?;
    let share: Option<String> = row.try_get(first + 2)?;
    let relation = if caller.user_id().is_some_and(|me| me.to_string() == owner) {
        Relation::Owner
    } else {
        match share.as_deref().and_then(ShareRole::from_str_name) {
            Some(ShareRole::CoAuthor) => Relation::CoAuthor,
            Some(ShareRole::Reader) => Relation::Reader,
            _ => Relation::Stranger,
        }
    };
    Ok(WorldAccess {
        world_id,
        owner_id: owner.parse().map_err(|_| fabula_store::error::Error::Internal(format!("bad owner id {owner}")))?,
        relation,
        visibility: Visibility::from_str_name(&visibility).unwrap_or(Visibility::Draft),
        admin: caller.is_admin(),
    })
}

/// Appends the condition (on a `worlds` row aliased `w`) that the caller may read it.
pub fn push_readable_worlds(caller: &Caller, sql: &mut Sql) {
    if caller.is_admin() {
        sql.push("1 = 1");
        return;
    }
    let me = caller.user_id().map(|id| id.to_string()).unwrap_or_default();
    sql.push("(w.visibility = 'PUBLIC' OR w.owner_id = ")
        .bind(Bind::Text(me.clone()))
        .push(" OR EXISTS (SELECT 1 FROM world_shares s WHERE s.world_id = w.id AND s.user_id = ")
        .bind(Bind::Text(me))
        .push("))");
}

#[cfg(test)]
mod tests {
    use fabula_contracts::pb::accounts::Role;
    use fabula_runtime::auth::Principal;

    use super::*;

    fn access(relation: Relation, visibility: Visibility, admin: bool) -> WorldAccess {
        WorldAccess { world_id: Uuid::nil(), owner_id: Uuid::nil(), relation, visibility, admin }
    }

    #[test]
    fn strangers_read_only_public_worlds() {
        assert!(access(Relation::Stranger, Visibility::Public, false).can_read());
        assert!(!access(Relation::Stranger, Visibility::Private, false).can_read());
        assert!(!access(Relation::Stranger, Visibility::Draft, false).can_read());
        assert!(access(Relation::Reader, Visibility::Draft, false).can_read());
        assert!(access(Relation::Stranger, Visibility::Draft, true).can_read());
    }

    #[test]
    fn readers_cannot_write_and_co_authors_cannot_own() {
        assert!(access(Relation::Reader, Visibility::Private, false).require_write_children().is_err());
        assert!(access(Relation::CoAuthor, Visibility::Private, false).require_write_children().is_ok());
        assert!(access(Relation::CoAuthor, Visibility::Private, false).require_owner().is_err());
        assert!(access(Relation::Stranger, Visibility::Private, true).require_owner().is_ok());
    }

    #[test]
    fn a_private_story_in_a_public_world_is_for_insiders_and_its_author() {
        let world = access(Relation::Stranger, Visibility::Public, false);
        let author = Uuid::now_v7();
        let stranger = Caller::User(Principal { user_id: Uuid::now_v7(), role: Role::User, job_id: None });
        let writer = Caller::User(Principal { user_id: author, role: Role::User, job_id: None });
        assert!(!world.can_read_story(&stranger, Visibility::Private, author));
        assert!(world.can_read_story(&writer, Visibility::Private, author));
        assert!(world.can_read_story(&Caller::Anonymous, Visibility::Public, author));
    }

    #[test]
    fn insiders_list_every_story_and_others_the_public_ones_and_their_own() {
        let caller = Caller::User(Principal { user_id: Uuid::nil(), role: Role::User, job_id: None });
        let cases = [
            (access(Relation::Owner, Visibility::Private, false), ""),
            (access(Relation::Reader, Visibility::Private, false), ""),
            (access(Relation::Stranger, Visibility::Private, true), ""),
            (
                access(Relation::Stranger, Visibility::Public, false),
                " AND (t.visibility = 'PUBLIC' OR t.owner_id = $1)",
            ),
        ];
        for (world, condition) in cases {
            let mut sql = Sql::new("");
            world.push_readable_stories(&caller, &mut sql);
            assert_eq!(sql.text(), condition, "{world:?}");
        }
    }
}
