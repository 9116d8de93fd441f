//! ProposalService: what a job would change in a world, kept until the author
//! accepts it (all of it, part of it, with edits), rejects it, or it expires.
//!
//! A proposal is one row whose changes are stored whole (proto3 JSON) and rewritten,
//! conditional on its version, when the author decides. Accepting checks every chosen
//! change for staleness ([`changes::is_stale`]) before writing any, then applies them
//! in one transaction, each write recorded as the proposal's ([`changes::Applier`]).
//! Those who may change the world's content see and decide proposals; readers are
//! refused (PERMISSION_DENIED), others do not see them (NOT_FOUND). Open proposals
//! past their time read as expired, and [`spawn_sweep`] marks them so.

pub mod changes;

use std::{collections::HashMap, time::Duration};

use fabula_contracts::pb::story::{
    AcceptProposalRequest, Change, ChangeState, CreateProposalRequest, GetProposalRequest, ListProposalsRequest,
    ListProposalsResponse, Proposal, ProposalState, RejectProposalRequest, proposal_service_server::ProposalService,
};
use fabula_runtime::{
    auth::{Caller, caller},
    errors::{self, FieldViolations},
    rules::{self, Checks},
};
use fabula_store::{
    db::{now_micros, timestamp},
    error::{Error, Result, denied, etag_mismatch, invalid, is_unique_violation, not_found},
    pagination::{Bind, Key, Listing, Page, Sql},
};
use sqlx::{AnyConnection, AnyPool, Row, any::AnyRow};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, PreconditionViolation, StatusExt};
use uuid::Uuid;

use crate::{
    State,
    access::{WorldAccess, world_access},
    domain,
    proposals::changes::{Applier, Created},
    revisions::record::{message_from_json, message_to_json},
    update::{check_etag, etag},
};

const LISTING: Listing = Listing {
    page_size: &rules::story::list_proposals_request::PAGE_SIZE,
    page_token: &rules::story::list_proposals_request::PAGE_TOKEN,
    // ListProposals takes no filter; this rule is never read.
    filter: &rules::story::list_proposals_request::PAGE_TOKEN,
    columns: &[],
};
const COLUMNS: &str = "p.id, p.world_id, p.job_id, p.user_id, p.title, p.state, p.changes, p.version, \
                       p.create_time, p.expire_time, p.decided_by, p.decide_time";
/// How often the sweep of expired proposals runs.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// The message whose proto3 JSON holds a proposal's changes.
const STORED: &str = "fabula.story.v1.Proposal";

pub struct ProposalsApi(pub State);

/// A proposal row: the message and its version.
struct Stored {
    proposal: Proposal,
    version: i64,
    world_id: Uuid,
}

fn uuid(id: &str) -> Result<Uuid> {
    Uuid::try_parse(id).map_err(|_| Error::Internal(format!("a proposal with a bad id {id}")))
}

fn state_name(state: ProposalState) -> &'static str {
    match state {
        ProposalState::ProposalAccepted => "ACCEPTED",
        ProposalState::ProposalRejected => "REJECTED",
        ProposalState::ProposalExpired => "EXPIRED",
        ProposalState::ProposalOpen | ProposalState::Unspecified => "OPEN",
    }
}

fn from_row(row: &AnyRow) -> Result<Stored> {
    let text = |i: usize| row.try_get::<Option<String>, _>(i);
    let stored: Proposal = message_from_json(STORED, &row.try_get::<String, _>(6)?)?;
    let (version, expire): (i64, i64) = (row.try_get(7)?, row.try_get(9)?);
    let state = match row.try_get::<String, _>(5)?.as_str() {
        "OPEN" if expire <= now_micros() => ProposalState::ProposalExpired,
        "OPEN" => ProposalState::ProposalOpen,
        "ACCEPTED" => ProposalState::ProposalAccepted,
        "REJECTED" => ProposalState::ProposalRejected,
        _ => ProposalState::ProposalExpired,
    };
    let world_id: String = row.try_get(1)?;
    Ok(Stored {
        world_id: uuid(&world_id)?,
        version,
        proposal: Proposal {
            id: row.try_get(0)?,
            world_id,
            job_id: row.try_get(2)?,
            user_id: row.try_get(3)?,
            title: row.try_get(4)?,
            state: state.into(),
            changes: stored.changes,
            create_time: Some(timestamp(row.try_get(8)?)),
            expire_time: Some(timestamp(expire)),
            decided_by: text(10)?.unwrap_or_default(),
            decide_time: row.try_get::<Option<i64>, _>(11)?.map(timestamp),
            etag: etag(version),
        },
    })
}

/// Proposal `id` with the caller's right to see it checked: NOT_FOUND unless they
/// read its world, PERMISSION_DENIED unless they may change its content.
async fn load(conn: &mut AnyConnection, caller: &Caller, id: Uuid) -> Result<(Stored, WorldAccess)> {
    let sql = format!("SELECT {COLUMNS} FROM proposals p WHERE p.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id.to_string()).fetch_optional(&mut *conn).await?;
    let stored = from_row(&row.ok_or_else(|| not_found("proposal"))?)?;
    let access = require_decider(conn, caller, stored.world_id).await?;
    Ok((stored, access))
}

/// NOT_FOUND unless the caller is a member of world `world_id` (its owner, one it is
/// shared with, an administrator), PERMISSION_DENIED unless they may change what is
/// in it.
async fn require_decider(conn: &mut AnyConnection, caller: &Caller, world_id: Uuid) -> Result<WorldAccess> {
    let access = world_access(&mut *conn, caller, world_id).await.map_err(|_| not_found("proposal"))?;
    if !access.reads_everything() {
        return Err(not_found("proposal"));
    }
    access
        .require_write_children()
        .map_err(|_| denied("only those who may change the world's content see and decide its proposals"))?;
    Ok(access)
}

/// FAILED_PRECONDITION unless `proposal` is open.
fn require_open(proposal: &Proposal) -> Result<()> {
    match proposal.state() {
        ProposalState::ProposalOpen => Ok(()),
        ProposalState::ProposalExpired => Err(errors::status(
            Code::FailedPrecondition,
            "PROPOSAL_EXPIRED",
            "this proposal expired; it is kept, read-only",
        )
        .into()),
        _ => {
            Err(errors::status(Code::FailedPrecondition, "PROPOSAL_DECIDED", "this proposal was already decided")
                .into())
        }
    }
}

/// The pending changes `ids` names (all pending ones when empty), by index; an id
/// that is no pending change of the proposal is INVALID_ARGUMENT under `change_ids`.
fn chosen(proposal: &Proposal, ids: &[String]) -> Result<Vec<usize>> {
    let pending = |c: &Change| c.state() == ChangeState::ChangePending;
    if ids.is_empty() {
        return Ok((0..proposal.changes.len()).filter(|&i| pending(&proposal.changes[i])).collect());
    }
    let mut violations = FieldViolations::new();
    let mut found = Vec::new();
    for id in ids {
        match proposal.changes.iter().position(|c| &c.id == id && pending(c)) {
            Some(index) => found.push(index),
            None => {
                violations.add("change_ids", format!("{} is not a pending change of this proposal", errors::quote(id)))
            }
        }
    }
    violations.finish()?;
    Ok(found)
}

impl ProposalsApi {
    async fn list(&self, caller: &Caller, request: ListProposalsRequest) -> Result<ListProposalsResponse> {
        let world_id = domain::id(&request.world_id).map_err(|e| invalid("world_id", e))?;
        let state = domain::enumeration(request.state, ProposalState::Unspecified).map_err(|e| invalid("state", e))?;
        let query = ["ListProposals", &request.world_id, state.as_str_name()];
        let page = Page::parse(request.page_size, &request.page_token, &LISTING, &query)?;
        let mut conn = self.0.db.reader.acquire().await?;
        require_decider(&mut conn, caller, world_id).await?;
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM proposals p WHERE p.world_id = "));
        sql.bind(Bind::Text(world_id.to_string()));
        push_state(&mut sql, state);
        if let Some(before) = page.after_like(&[Key::Int(0), Key::Text(String::new())])? {
            sql.push_before(&["p.create_time", "p.id"], before);
        }
        sql.push(" ORDER BY p.create_time DESC, p.id DESC LIMIT ").bind(Bind::Int(page.fetch_limit()));
        let rows = sql.query().fetch_all(&mut *conn).await?;
        let proposals = rows.iter().map(|r| from_row(r).map(|s| s.proposal)).collect::<Result<Vec<_>>>()?;
        let key = |p: &Proposal| {
            let micros = p.create_time.map_or(0, crate::revisions::record::to_micros);
            vec![Key::Int(micros), Key::Text(p.id.clone())]
        };
        let (proposals, next_page_token) = page.finish(proposals, key);
        Ok(ListProposalsResponse { proposals, next_page_token })
    }

    async fn create(&self, caller: &Caller, request: CreateProposalRequest) -> Result<Proposal> {
        let principal = *caller.require_user()?;
        let job_id = principal.job_id.ok_or_else(|| denied("proposals are made by the jobs of gpt-worker"))?;
        let (world_id, title, mut proposal) = check_new(request)?;
        let mut tx = self.0.db.begin().await?;
        if let Some(first) = self.of_job(&mut tx, job_id).await? {
            return Ok(first);
        }
        world_access(&mut *tx, caller, world_id).await?.require_write_children()?;
        let created: Created = proposal.changes.iter().filter_map(changes::created_id).map(str::to_owned).collect();
        let mut violations = FieldViolations::new();
        for (i, change) in proposal.changes.iter_mut().enumerate() {
            let field = format!("proposal.changes[{i}]");
            changes::prepare(&mut tx, world_id, change, &created, &field, &mut violations).await?;
            change.id = format!("c{}", i + 1);
            change.state = ChangeState::ChangePending.into();
        }
        violations.finish()?;
        let id = Uuid::now_v7();
        let now = now_micros();
        let ttl = i64::try_from(self.0.settings.proposal_ttl.as_micros()).unwrap_or(i64::MAX);
        let inserted = sqlx::query(
            "INSERT INTO proposals (id, world_id, job_id, user_id, title, state, changes, version, create_time, \
             expire_time) VALUES ($1, $2, $3, $4, $5, 'OPEN', $6, 1, $7, $8)",
        )
        .bind(id.to_string())
        .bind(world_id.to_string())
        .bind(job_id.to_string())
        .bind(principal.user_id.to_string())
        .bind(title)
        .bind(message_to_json(STORED, &Proposal { changes: proposal.changes, ..Proposal::default() })?)
        .bind(now)
        .bind(now.saturating_add(ttl))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(error) if is_unique_violation(&error) => {
                drop(tx);
                let mut conn = self.0.db.reader.acquire().await?;
                return self.of_job(&mut conn, job_id).await?.ok_or_else(|| not_found("proposal"));
            }
            other => other?,
        };
        let (stored, _) = load(&mut tx, caller, id).await?;
        tx.commit().await?;
        Ok(stored.proposal)
    }

    /// The proposal job `job_id` made, if any.
    async fn of_job(&self, conn: &mut AnyConnection, job_id: Uuid) -> Result<Option<Proposal>> {
        let sql = format!("SELECT {COLUMNS} FROM proposals p WHERE p.job_id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(job_id.to_string()).fetch_optional(conn).await?;
        row.as_ref().map(|r| from_row(r).map(|s| s.proposal)).transpose()
    }

    async fn accept(&self, caller: &Caller, request: AcceptProposalRequest) -> Result<Proposal> {
        let me = *caller.require_user()?;
        let id = self.check_decision(&request.id, &request.change_ids, &request.etag)?;
        let mut tx = self.0.db.begin().await?;
        let (Stored { mut proposal, version, world_id }, access) = load(&mut tx, caller, id).await?;
        require_open(&proposal)?;
        check_etag(&request.etag, version, "proposal")?;
        let mut picked = chosen(&proposal, &request.change_ids)?;
        apply_edits(&mut proposal, &picked, &request)?;
        // A link or event needing a create that is not chosen is declined with it.
        let dropped: Vec<&str> = (0..proposal.changes.len())
            .filter(|i| !picked.contains(i))
            .filter_map(|i| changes::created_id(&proposal.changes[i]))
            .collect();
        let dropped: Created = dropped.into_iter().map(str::to_owned).collect();
        picked.retain(|&i| !changes::depends_on(&proposal.changes[i]).iter().any(|id| dropped.contains(*id)));
        if picked.iter().any(|&i| changes::sets_the_world(&proposal.changes[i])) {
            access.require_owner()?;
        }
        require_fresh(&mut tx, world_id, &proposal, &picked).await?;
        let applier = Applier {
            caller,
            quotas: &self.0.settings.quotas,
            world_id,
            job_id: uuid(&proposal.job_id)?,
            proposal_id: id,
        };
        // What is created first, so that what links to it finds it.
        picked.sort_by_key(|&i| changes::created_id(&proposal.changes[i]).is_none());
        for &i in &picked {
            applier.apply(&mut tx, &proposal.changes[i]).await?;
        }
        for (i, change) in proposal.changes.iter_mut().enumerate() {
            if change.state() == ChangeState::ChangePending {
                let state = if picked.contains(&i) { ChangeState::ChangeApplied } else { ChangeState::ChangeDeclined };
                change.state = state.into();
            }
        }
        let decision =
            if picked.is_empty() { ProposalState::ProposalRejected } else { ProposalState::ProposalAccepted };
        self.save(&mut tx, &proposal, version, decision, Some(me.user_id)).await?;
        let (saved, _) = load(&mut tx, caller, id).await?;
        tx.commit().await?;
        Ok(saved.proposal)
    }

    /// Checks what AcceptProposal and RejectProposal share: the id, the change ids and
    /// the etag, all problems at once.
    fn check_decision(&self, id: &str, change_ids: &[String], etag: &str) -> Result<Uuid> {
        let mut violations = FieldViolations::new();
        let id = violations.check("id", domain::id(id));
        rules::story::accept_proposal_request::CHANGE_IDS.check_list("change_ids", change_ids, &mut violations);
        violations.check("etag", rules::text(etag, &rules::story::accept_proposal_request::ETAG));
        violations.finish()?;
        Ok(id.unwrap_or_default())
    }

    async fn reject(&self, caller: &Caller, request: RejectProposalRequest) -> Result<Proposal> {
        let me = *caller.require_user()?;
        let id = self.check_decision(&request.id, &request.change_ids, &request.etag)?;
        let mut tx = self.0.db.begin().await?;
        let (Stored { mut proposal, version, .. }, _) = load(&mut tx, caller, id).await?;
        require_open(&proposal)?;
        check_etag(&request.etag, version, "proposal")?;
        for i in chosen(&proposal, &request.change_ids)? {
            proposal.changes[i].state = ChangeState::ChangeDeclined.into();
        }
        let open = proposal.changes.iter().any(|c| c.state() == ChangeState::ChangePending);
        let (state, by) = if open {
            (ProposalState::ProposalOpen, None)
        } else {
            (ProposalState::ProposalRejected, Some(me.user_id))
        };
        self.save(&mut tx, &proposal, version, state, by).await?;
        let (saved, _) = load(&mut tx, caller, id).await?;
        tx.commit().await?;
        Ok(saved.proposal)
    }

    /// Writes the changes and `state` of `proposal`, read at `version`, and who
    /// decided it (`by`); ABORTED when it changed meanwhile.
    async fn save(
        &self,
        conn: &mut AnyConnection,
        proposal: &Proposal,
        version: i64,
        state: ProposalState,
        by: Option<Uuid>,
    ) -> Result<()> {
        let changes = Proposal { changes: proposal.changes.clone(), ..Proposal::default() };
        let saved = sqlx::query(
            "UPDATE proposals SET state = $1, changes = $2, version = version + 1, decided_by = $3, decide_time = $4 \
             WHERE id = $5 AND version = $6",
        )
        .bind(state_name(state))
        .bind(message_to_json(STORED, &changes)?)
        .bind(by.map(|u| u.to_string()))
        .bind(by.map(|_| now_micros()))
        .bind(&proposal.id)
        .bind(version)
        .execute(conn)
        .await?;
        if saved.rows_affected() == 1 { Ok(()) } else { Err(etag_mismatch("proposal")) }
    }
}

/// The world, title and proposal of a CreateProposal, checked as far as that needs no
/// database, every problem reported at once.
fn check_new(request: CreateProposalRequest) -> Result<(Uuid, String, Proposal)> {
    let mut violations = FieldViolations::new();
    let world_id = violations.check("world_id", domain::id(&request.world_id)).unwrap_or_default();
    let mut proposal = request.proposal.unwrap_or_default();
    let title = violations.check("proposal.title", rules::text(&proposal.title, &rules::story::proposal::TITLE));
    if let Err(problem) = rules::story::proposal::CHANGES.check_count(proposal.changes.len()) {
        violations.add("proposal.changes", problem);
    } else if proposal.changes.is_empty() {
        violations.add("proposal.changes", "is required: a proposal proposes at least one change");
    }
    for (i, change) in proposal.changes.iter_mut().enumerate() {
        changes::check(change, &format!("proposal.changes[{i}]"), &mut violations);
    }
    violations.finish()?;
    Ok((world_id, title.unwrap_or_default(), proposal))
}

/// Puts the author's edits into the changes they name, which must be among `picked`.
fn apply_edits(proposal: &mut Proposal, picked: &[usize], request: &AcceptProposalRequest) -> Result<()> {
    let mut violations = FieldViolations::new();
    let index: HashMap<String, usize> = picked.iter().map(|&i| (proposal.changes[i].id.clone(), i)).collect();
    for (n, edit) in request.edits.iter().enumerate() {
        let field = format!("edits[{n}]");
        match index.get(&edit.change_id) {
            Some(&i) => changes::edit(&mut proposal.changes[i], edit, &field, &mut violations),
            None => violations.add(format!("{field}.change_id"), "names no change being accepted"),
        }
    }
    violations.finish()?;
    Ok(())
}

/// PROPOSAL_STALE ([`stale_error`]) when any of the `picked` changes of `proposal` is
/// stale, checked before anything is written.
async fn require_fresh(conn: &mut AnyConnection, world_id: Uuid, proposal: &Proposal, picked: &[usize]) -> Result<()> {
    let created: Created =
        picked.iter().filter_map(|&i| changes::created_id(&proposal.changes[i])).map(str::to_owned).collect();
    let mut stale = Vec::new();
    for &i in picked {
        if changes::is_stale(&mut *conn, world_id, &proposal.changes[i], &created).await? {
            stale.push(proposal.changes[i].id.clone());
        }
    }
    if stale.is_empty() { Ok(()) } else { Err(stale_error(&stale).into()) }
}

/// FAILED_PRECONDITION, reason PROPOSAL_STALE, naming the `stale` changes in the
/// ErrorInfo's metadata and as PreconditionFailure violations.
fn stale_error(stale: &[String]) -> Status {
    let ids = stale.join(",");
    let metadata = HashMap::from([("stale_change_ids".to_owned(), ids.clone())]);
    let mut details = ErrorDetails::with_error_info("PROPOSAL_STALE", errors::DOMAIN, metadata);
    details.set_precondition_failure(
        stale
            .iter()
            .map(|id| PreconditionViolation::new("STALE", id, "what this change targets changed since it was proposed"))
            .collect::<Vec<_>>(),
    );
    let message = format!("changes {ids} are stale: what they target changed since the proposal; nothing was applied");
    Status::with_error_details(Code::FailedPrecondition, errors::bounded(message, errors::MAX_MESSAGE_BYTES), details)
}

/// Appends the condition that a proposal is in `state` (any, when unspecified).
fn push_state(sql: &mut Sql, state: ProposalState) {
    let now = Bind::Int(now_micros());
    match state {
        ProposalState::Unspecified => {}
        ProposalState::ProposalOpen => {
            sql.push(" AND p.state = 'OPEN' AND p.expire_time > ").bind(now);
        }
        ProposalState::ProposalExpired => {
            sql.push(" AND (p.state = 'EXPIRED' OR (p.state = 'OPEN' AND p.expire_time <= ").bind(now).push("))");
        }
        decided => {
            sql.push(" AND p.state = ").bind(Bind::Text(state_name(decided).to_owned()));
        }
    }
}

/// Marks the open proposals past their time EXPIRED; returns how many.
pub async fn expire_due(pool: &AnyPool) -> Result<u64> {
    let expired = sqlx::query(
        "UPDATE proposals SET state = 'EXPIRED', version = version + 1 WHERE state = 'OPEN' AND expire_time <= $1",
    )
    .bind(now_micros())
    .execute(pool)
    .await?;
    Ok(expired.rows_affected())
}

/// Runs [`expire_due`] every hour until the database closes.
pub fn spawn_sweep(pool: AnyPool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        while !pool.is_closed() {
            tick.tick().await;
            match expire_due(&pool).await {
                Ok(0) => {}
                Ok(expired) => tracing::info!(expired, "open proposals expired"),
                Err(error) if !pool.is_closed() => tracing::warn!(error = %error, "the sweep of proposals failed"),
                Err(_) => {}
            }
        }
    });
}

#[tonic::async_trait]
impl ProposalService for ProposalsApi {
    async fn list_proposals(
        &self,
        request: Request<ListProposalsRequest>,
    ) -> Result<Response<ListProposalsResponse>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.list(&caller, request.into_inner()).await?))
    }

    async fn get_proposal(&self, request: Request<GetProposalRequest>) -> Result<Response<Proposal>, Status> {
        let caller = caller(&request);
        caller.require_user()?;
        let id = domain::id(&request.get_ref().id).map_err(|e| invalid("id", e))?;
        let mut conn = self.0.db.reader.acquire().await.map_err(Error::from)?;
        Ok(Response::new(load(&mut conn, &caller, id).await?.0.proposal))
    }

    async fn accept_proposal(&self, request: Request<AcceptProposalRequest>) -> Result<Response<Proposal>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.accept(&caller, request.into_inner()).await?))
    }

    async fn reject_proposal(&self, request: Request<RejectProposalRequest>) -> Result<Response<Proposal>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.reject(&caller, request.into_inner()).await?))
    }

    async fn create_proposal(&self, request: Request<CreateProposalRequest>) -> Result<Response<Proposal>, Status> {
        let caller = caller(&request);
        Ok(Response::new(self.create(&caller, request.into_inner()).await?))
    }
}
