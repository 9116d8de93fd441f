//! InvitationService: a world's owner invites a user, by username or by email
//! address; accepting shares the world with them through [`worlds::grant_share`],
//! the code ShareWorld uses.
//!
//! An invitation names its invitee by a key, `user:<id>` or `email:<address>`, and a
//! caller's invitations are those under either of their two keys. An invitation by
//! email is stored without looking the address up, so the inviter's answer is the same
//! whether or not an account has it. A PENDING invitation past its expiry reads as
//! EXPIRED; an answer moves it out of PENDING with one conditional UPDATE, so of two
//! answers at once only one wins.

use fabula_contracts::pb::story::{
    AcceptInvitationRequest, AcceptInvitationResponse, DeclineInvitationRequest, Invitation, InvitationState,
    InviteCollaboratorRequest, ListMyInvitationsRequest, ListMyInvitationsResponse, ListWorldInvitationsRequest,
    ListWorldInvitationsResponse, RevokeInvitationRequest, ShareRole, invitation, invitation_service_server,
    invite_collaborator_request::Invitee as Addressed,
};
use fabula_runtime::{
    auth::{Caller, Principal, caller},
    errors::{self, FieldViolations},
    rules::{self, story::invite_collaborator_request as declared},
};
use fabula_store::{
    db::{now_micros, timestamp},
    error::{Error, Result, denied, invalid, not_found},
    pagination::{Bind, Key, Listing, Page, Sql},
};
use sqlx::{Any, Executor, Row, Transaction, any::AnyRow};
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

use crate::{
    State,
    access::{WorldAccess, world_access},
    domain,
    worlds::{self, find_user, grant_share},
};

const COLUMNS: &str = "i.id, i.world_id, w.name, i.inviter_id, COALESCE(u.username, ''), iu.username, \
     i.invitee_email, i.role, i.message, i.state, i.create_time, i.update_time, i.expire_time, i.invitee_key";
const FROM: &str = " FROM invitations i JOIN worlds w ON w.id = i.world_id \
     LEFT JOIN users u ON u.id = i.inviter_id LEFT JOIN users iu ON iu.id = i.invitee_id";
const WORLD_LISTING: Listing = Listing {
    page_size: &rules::story::list_world_invitations_request::PAGE_SIZE,
    page_token: &rules::story::list_world_invitations_request::PAGE_TOKEN,
    // These lists take no filter; this rule is never read.
    filter: &rules::story::list_world_invitations_request::PAGE_TOKEN,
    columns: &[],
};
const MY_LISTING: Listing = Listing {
    page_size: &rules::story::list_my_invitations_request::PAGE_SIZE,
    page_token: &rules::story::list_my_invitations_request::PAGE_TOKEN,
    filter: &rules::story::list_my_invitations_request::PAGE_TOKEN,
    columns: &[],
};

pub struct InvitationsApi(pub State);

/// Whom an invitation is for, as stored.
enum Invitee {
    User(Uuid),
    /// The address as typed, and its key (lowercase).
    Email(String, String),
}

impl Invitee {
    fn key(&self) -> String {
        match self {
            Self::User(id) => user_key(*id),
            Self::Email(_, key) => format!("email:{key}"),
        }
    }
}

fn user_key(id: Uuid) -> String {
    format!("user:{id}")
}

/// An InviteCollaboratorRequest, validated.
struct Invite {
    world_id: Uuid,
    addressed: Addressed,
    role: ShareRole,
    message: String,
}

impl Invite {
    fn parse(request: InviteCollaboratorRequest) -> Result<Self> {
        let mut violations = FieldViolations::new();
        let world_id = violations.check("world_id", domain::id(&request.world_id));
        let addressed = match request.invitee {
            Some(Addressed::Username(name)) => {
                violations.check("username", rules::text(&name, &declared::USERNAME)).map(Addressed::Username)
            }
            Some(Addressed::Email(email)) => {
                violations.check("email", rules::text(&email, &declared::EMAIL)).map(Addressed::Email)
            }
            None => {
                violations.add("invitee", "is required: a username or an email address");
                None
            }
        };
        let role = violations.check("role", worlds::share_role(request.role));
        let message = violations.check("message", rules::text(&request.message, &declared::MESSAGE));
        violations.finish()?;
        match (world_id, addressed, role, message) {
            (Some(world_id), Some(addressed), Some(role), Some(message)) => {
                Ok(Self { world_id, addressed, role, message })
            }
            _ => Err(Error::Internal("a checked invitation lacks a field".into())),
        }
    }
}

/// The state of an invitation stored as `state`, which expires at `expire_time`.
fn state_at(state: &str, expire_time: i64, now: i64) -> InvitationState {
    match InvitationState::from_str_name(state).unwrap_or(InvitationState::Revoked) {
        InvitationState::Pending if expire_time <= now => InvitationState::Expired,
        other => other,
    }
}

fn invitation_from_row(row: &AnyRow, now: i64) -> Result<Invitation> {
    let email: Option<String> = row.try_get(6)?;
    let invitee = match email {
        Some(email) => invitation::Invitee::Email(email),
        None => invitation::Invitee::Username(row.try_get::<Option<String>, _>(5)?.unwrap_or_default()),
    };
    let expire_time: i64 = row.try_get(12)?;
    Ok(Invitation {
        id: row.try_get(0)?,
        world_id: row.try_get(1)?,
        world_name: row.try_get(2)?,
        inviter_id: row.try_get(3)?,
        inviter_username: row.try_get(4)?,
        invitee: Some(invitee),
        role: ShareRole::from_str_name(&row.try_get::<String, _>(7)?).unwrap_or(ShareRole::Reader).into(),
        message: row.try_get(8)?,
        state: state_at(&row.try_get::<String, _>(9)?, expire_time, now).into(),
        create_time: Some(timestamp(row.try_get(10)?)),
        update_time: Some(timestamp(row.try_get(11)?)),
        expire_time: Some(timestamp(expire_time)),
    })
}

/// Invitation `id` and its invitee key, with no access check.
async fn fetch<'e>(executor: impl Executor<'e, Database = Any>, id: Uuid) -> Result<Option<(Invitation, String)>> {
    let sql = format!("SELECT {COLUMNS}{FROM} WHERE i.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(executor).await?;
    row.map(|row| Ok((invitation_from_row(&row, now_micros())?, row.try_get(13)?))).transpose()
}

/// The caller's two invitee keys: by user id and by email address.
async fn my_keys<'e>(executor: impl Executor<'e, Database = Any>, me: &Principal) -> Result<[String; 2]> {
    let email: String = sqlx::query("SELECT email_key FROM users WHERE id = $1")
        .bind(me.user_id.to_string())
        .fetch_optional(executor)
        .await?
        .ok_or_else(|| not_found("user"))?
        .try_get(0)?;
    Ok([user_key(me.user_id), format!("email:{email}")])
}

/// ALREADY_EXISTS with reason ALREADY_COLLABORATOR: the invitee has a place in the
/// world already (as its owner, or a share).
fn already_collaborator(message: &str) -> Error {
    errors::status(Code::AlreadyExists, "ALREADY_COLLABORATOR", message).into()
}

/// FAILED_PRECONDITION for an answer to an invitation in `state`, which is not PENDING.
fn not_pending(state: InvitationState) -> Error {
    let reason = format!("INVITATION_{}", state.as_str_name());
    let message = match state {
        InvitationState::Expired => "this invitation has expired; ask for a new one".to_owned(),
        other => format!("this invitation was {} already", other.as_str_name().to_lowercase()),
    };
    errors::status(Code::FailedPrecondition, &reason, message).into()
}

/// An invitation the caller may see, and what they are to it.
struct Found {
    id: Uuid,
    invitation: Invitation,
    invitee: bool,
    /// Whether the caller may invite to its world (and so revoke it).
    inviter: bool,
    access: WorldAccess,
}

impl Found {
    /// PERMISSION_DENIED unless the caller is the invitee.
    fn require_invitee(&self) -> Result<()> {
        if self.invitee { Ok(()) } else { Err(denied("only the invitee answers an invitation")) }
    }

    /// PERMISSION_DENIED unless the caller may invite to the world.
    fn require_inviter(&self) -> Result<()> {
        if self.inviter { Ok(()) } else { Err(denied("only the world's owner withdraws an invitation")) }
    }
}

/// Invitation `id` for the caller: NOT_FOUND unless they are its invitee or may
/// invite to its world.
async fn find(tx: &mut Transaction<'static, Any>, caller: &Caller, id: &str) -> Result<Found> {
    let me = caller.require_user()?;
    let id = domain::id(id).map_err(|e| invalid("id", e))?;
    let (invitation, key) = fetch(&mut **tx, id).await?.ok_or_else(|| not_found("invitation"))?;
    let invitee = my_keys(&mut **tx, me).await?.contains(&key);
    let world_id = Uuid::try_parse(&invitation.world_id).map_err(|_| Error::Internal("bad world id".into()))?;
    let access = world_access(&mut **tx, caller, world_id).await?;
    let inviter = access.require_owner().is_ok();
    if !invitee && !inviter {
        return Err(not_found("invitation"));
    }
    Ok(Found { id, invitation, invitee, inviter, access })
}

/// Moves the invitation `found` from PENDING (and, unless revoking, unexpired) to `to`;
/// FAILED_PRECONDITION naming its state when it is not. A revoked invitation is
/// revoked again as it is.
async fn close(tx: &mut Transaction<'static, Any>, found: &Found, to: InvitationState) -> Result<()> {
    let revoking = to == InvitationState::Revoked;
    match found.invitation.state() {
        InvitationState::Pending => {}
        InvitationState::Expired | InvitationState::Revoked if revoking => {}
        other => return Err(not_pending(other)),
    }
    let now = now_micros();
    let unexpired = if revoking { "" } else { " AND expire_time > $3" };
    let sql =
        format!("UPDATE invitations SET state = $1, update_time = $3 WHERE id = $2 AND state = 'PENDING'{unexpired}");
    let closed = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to.as_str_name())
        .bind(found.id.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if closed == 0 {
        // Answered or expired since it was read: say how it is now.
        let now = fetch(&mut **tx, found.id).await?.map(|(invitation, _)| invitation.state());
        match now.unwrap_or(InvitationState::Revoked) {
            InvitationState::Revoked if revoking => {}
            other => return Err(not_pending(other)),
        }
    }
    Ok(())
}

/// Invitation `id` as it is now in `tx`, which has it.
async fn reread(tx: &mut Transaction<'static, Any>, id: Uuid) -> Result<Invitation> {
    let found = fetch(&mut **tx, id).await?;
    found.map(|(invitation, _)| invitation).ok_or_else(|| Error::Internal(format!("invitation {id} vanished")))
}

/// Whom `addressed` names; ALREADY_COLLABORATOR for the world's owner, the caller and
/// a user the world is shared with. An address is compared with the owner's and the
/// caller's only, never looked up.
async fn resolve(
    tx: &mut Transaction<'static, Any>,
    access: &WorldAccess,
    me: &Principal,
    addressed: &Addressed,
) -> Result<Invitee> {
    match addressed {
        Addressed::Username(name) => {
            let (id, _) = find_user(tx, name).await?;
            if id == access.owner_id || id == me.user_id {
                return Err(already_collaborator("that is the world's owner, or you"));
            }
            let shared = sqlx::query("SELECT 1 FROM world_shares WHERE world_id = $1 AND user_id = $2")
                .bind(access.world_id.to_string())
                .bind(id.to_string())
                .fetch_optional(&mut **tx)
                .await?;
            if shared.is_some() {
                return Err(already_collaborator(
                    "the world is shared with this user already; ShareWorld changes roles",
                ));
            }
            Ok(Invitee::User(id))
        }
        Addressed::Email(email) => {
            // Keyed as accounts key their addresses.
            let key = email.to_lowercase();
            let own: i64 = sqlx::query("SELECT COUNT(*) FROM users WHERE id IN ($1, $2) AND email_key = $3")
                .bind(access.owner_id.to_string())
                .bind(me.user_id.to_string())
                .bind(&key)
                .fetch_one(&mut **tx)
                .await?
                .try_get(0)?;
            if own > 0 {
                return Err(already_collaborator("that is the address of the world's owner, or your own"));
            }
            Ok(Invitee::Email(email.clone(), key))
        }
    }
}

impl InvitationsApi {
    async fn invite(&self, caller: &Caller, request: InviteCollaboratorRequest) -> Result<Invitation> {
        let me = *caller.require_user()?;
        let invite = Invite::parse(request)?;
        let mut tx = self.0.db.begin().await?;
        let access = world_access(&mut *tx, caller, invite.world_id).await?;
        access.require_owner()?;
        let invitee = resolve(&mut tx, &access, &me, &invite.addressed).await?;
        let id = self.upsert(&mut tx, &me, &invite, &invitee).await?;
        let invitation = reread(&mut tx, id).await?;
        tx.commit().await?;
        Ok(invitation)
    }

    /// Writes the invitation, or updates the PENDING one to the same invitee; its id.
    async fn upsert(
        &self,
        tx: &mut Transaction<'static, Any>,
        me: &Principal,
        invite: &Invite,
        invitee: &Invitee,
    ) -> Result<Uuid> {
        let now = now_micros();
        let ttl = i64::try_from(self.0.settings.invitation_ttl.as_micros()).unwrap_or(i64::MAX);
        let (invitee_id, email) = match invitee {
            Invitee::User(id) => (Some(id.to_string()), None),
            Invitee::Email(typed, _) => (None, Some(typed.clone())),
        };
        sqlx::query(
            "INSERT INTO invitations (id, world_id, inviter_id, invitee_key, invitee_id, invitee_email, role, message, \
             state, create_time, update_time, expire_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'PENDING', $9, $9, $10) \
             ON CONFLICT (world_id, invitee_key) WHERE state = 'PENDING' DO UPDATE SET inviter_id = excluded.inviter_id, \
             invitee_email = excluded.invitee_email, role = excluded.role, message = excluded.message, \
             update_time = excluded.update_time, expire_time = excluded.expire_time",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(invite.world_id.to_string())
        .bind(me.user_id.to_string())
        .bind(invitee.key())
        .bind(invitee_id)
        .bind(email)
        .bind(invite.role.as_str_name())
        .bind(&invite.message)
        .bind(now)
        .bind(now.saturating_add(ttl))
        .execute(&mut **tx)
        .await?;
        let id: String =
            sqlx::query("SELECT id FROM invitations WHERE world_id = $1 AND invitee_key = $2 AND state = 'PENDING'")
                .bind(invite.world_id.to_string())
                .bind(invitee.key())
                .fetch_one(&mut **tx)
                .await?
                .try_get(0)?;
        Uuid::try_parse(&id).map_err(|_| Error::Internal(format!("an invitation with a bad id {id}")))
    }

    async fn list_world(
        &self,
        caller: &Caller,
        request: ListWorldInvitationsRequest,
    ) -> Result<ListWorldInvitationsResponse> {
        let world_id = domain::id(&request.world_id).map_err(|e| invalid("world_id", e))?;
        let query = ["ListWorldInvitations", request.world_id.as_str()];
        let page = Page::parse(request.page_size, &request.page_token, &WORLD_LISTING, &query)?;
        world_access(&self.0.db.reader, caller, world_id).await?.require_owner()?;
        let mut sql = Sql::new(&format!("SELECT {COLUMNS}{FROM} WHERE i.state = 'PENDING' AND i.world_id = "));
        sql.bind(Bind::Text(world_id.to_string()));
        let (invitations, next_page_token) = self.page(sql, &page).await?;
        Ok(ListWorldInvitationsResponse { invitations, next_page_token })
    }

    async fn list_mine(&self, caller: &Caller, request: ListMyInvitationsRequest) -> Result<ListMyInvitationsResponse> {
        let me = caller.require_user()?;
        let query = ["ListMyInvitations", &me.user_id.to_string()];
        let page = Page::parse(request.page_size, &request.page_token, &MY_LISTING, &query)?;
        let [by_id, by_email] = my_keys(&self.0.db.reader, me).await?;
        let mut sql = Sql::new(&format!("SELECT {COLUMNS}{FROM} WHERE i.state = 'PENDING' AND i.expire_time > "));
        sql.bind(Bind::Int(now_micros())).push(" AND i.invitee_key IN (");
        sql.bind(Bind::Text(by_id)).push(", ").bind(Bind::Text(by_email)).push(")");
        let (invitations, next_page_token) = self.page(sql, &page).await?;
        Ok(ListMyInvitationsResponse { invitations, next_page_token })
    }

    /// One page of the invitations `sql` selects, newest first.
    async fn page(&self, mut sql: Sql, page: &Page) -> Result<(Vec<Invitation>, String)> {
        if let Some(before) = page.after_like(&[Key::Text(String::new())])? {
            sql.push_before(&["i.id"], before);
        }
        sql.push(" ORDER BY i.id DESC LIMIT ").bind(Bind::Int(page.fetch_limit()));
        let now = now_micros();
        let rows = sql.query().fetch_all(&self.0.db.reader).await?;
        let invitations = rows.iter().map(|row| invitation_from_row(row, now)).collect::<Result<Vec<_>>>()?;
        Ok(page.finish(invitations, |invitation| vec![Key::Text(invitation.id.clone())]))
    }

    async fn accept(&self, caller: &Caller, request: AcceptInvitationRequest) -> Result<AcceptInvitationResponse> {
        let me = *caller.require_user()?;
        let mut tx = self.0.db.begin().await?;
        let found = find(&mut tx, caller, &request.id).await?;
        found.require_invitee()?;
        if found.access.owner_id == me.user_id {
            return Err(already_collaborator("you own this world"));
        }
        close(&mut tx, &found, InvitationState::Accepted).await?;
        let (_, username) = find_user(&mut tx, &me.user_id.to_string()).await?;
        let role = found.invitation.role();
        let share = grant_share(&mut tx, found.access.world_id, (me.user_id, username), role).await?;
        let invitation = reread(&mut tx, found.id).await?;
        tx.commit().await?;
        Ok(AcceptInvitationResponse { invitation: Some(invitation), share: Some(share) })
    }

    /// DeclineInvitation (by the invitee) or RevokeInvitation (by whoever may invite).
    async fn answer(&self, caller: &Caller, id: &str, to: InvitationState) -> Result<Invitation> {
        caller.require_user()?;
        let mut tx = self.0.db.begin().await?;
        let found = find(&mut tx, caller, id).await?;
        if to == InvitationState::Revoked {
            found.require_inviter()?;
        } else {
            found.require_invitee()?;
        }
        close(&mut tx, &found, to).await?;
        let invitation = reread(&mut tx, found.id).await?;
        tx.commit().await?;
        Ok(invitation)
    }
}

#[tonic::async_trait]
impl invitation_service_server::InvitationService for InvitationsApi {
    async fn invite_collaborator(
        &self,
        request: Request<InviteCollaboratorRequest>,
    ) -> Result<Response<Invitation>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.invite(&caller, request.into_inner()).await?))
    }

    async fn list_world_invitations(
        &self,
        request: Request<ListWorldInvitationsRequest>,
    ) -> Result<Response<ListWorldInvitationsResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.list_world(&caller, request.into_inner()).await?))
    }

    async fn list_my_invitations(
        &self,
        request: Request<ListMyInvitationsRequest>,
    ) -> Result<Response<ListMyInvitationsResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.list_mine(&caller, request.into_inner()).await?))
    }

    async fn accept_invitation(
        &self,
        request: Request<AcceptInvitationRequest>,
    ) -> Result<Response<AcceptInvitationResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.accept(&caller, request.into_inner()).await?))
    }

    async fn decline_invitation(
        &self,
        request: Request<DeclineInvitationRequest>,
    ) -> Result<Response<Invitation>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.answer(&caller, &request.get_ref().id, InvitationState::Declined).await?))
    }

    async fn revoke_invitation(
        &self,
        request: Request<RevokeInvitationRequest>,
    ) -> Result<Response<Invitation>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.answer(&caller, &request.get_ref().id, InvitationState::Revoked).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_invitation_past_its_expiry_reads_as_expired() {
        assert_eq!(state_at("PENDING", 10, 9), InvitationState::Pending);
        assert_eq!(state_at("PENDING", 10, 10), InvitationState::Expired);
        assert_eq!(state_at("ACCEPTED", 10, 11), InvitationState::Accepted, "an answer does not expire");
    }
}
