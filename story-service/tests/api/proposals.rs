//! ProposalService: a job proposes (through gpt-worker's delegated token), the author
//! accepts all, some (with edits) or none; a stale proposal applies nothing; decided
//! and expired proposals stay read-only; who sees and decides; and an accepted
//! proposal undone as its job, but for what a person edited since.

use crate::common;

use common::*;
use fabula_contracts::pb::story::{
    AcceptProposalRequest, Change, ChangeEdit, ChangeState, CreateEntityRequest, CreateProposalRequest, Entity, Event,
    GetEntityRequest, GetProposalRequest, GetStoryRequest, GetWorldRequest, LinkToStory, ListEntitiesRequest,
    ListEventsRequest, ListProposalsRequest, ListRevisionsRequest, Proposal, ProposalState, RejectProposalRequest,
    ResourceKind, SetField, ShareRole, UndoJobRequest, UpdateEntityRequest, UpdateWorldRequest, Visibility, World,
    author::Via, change::Kind, change_edit, link_to_story::Item, proposal_service_client::ProposalServiceClient,
};
use fabula_runtime::token::DelegationIssuer;
use prost_types::FieldMask;
use std::time::Duration;
use tonic::{Code, Status, transport::Channel};
use tonic_types::StatusExt;
use uuid::Uuid;

both_databases!(
    accepting_all_applies_every_change_as_the_proposals,
    a_partial_accept_applies_the_chosen_changes_with_their_edits,
    a_stale_change_makes_the_accept_apply_nothing,
    rejected_and_accepted_proposals_are_decided_for_good,
    owners_and_co_authors_decide_readers_are_refused_strangers_see_nothing,
    open_proposals_expire_and_the_sweep_marks_them,
    undoing_an_accepted_proposal_skips_what_a_person_edited_since,
    refuses_bad_proposals_naming_each_field,
);

fn proposals(app: &TestApp) -> ProposalServiceClient<Channel> {
    app.proposals()
}

fn change(kind: Kind) -> Change {
    Change { kind: Some(kind), reason: "found in the story".into(), ..Change::default() }
}

fn create_entity(name: &str, id: &str) -> Change {
    change(Kind::CreateEntity(Entity { id: id.into(), name: name.into(), ..Entity::default() }))
}

fn link_entity(story_id: &str, entity_id: &str) -> Change {
    change(Kind::Link(LinkToStory { story_id: story_id.into(), item: Some(Item::EntityId(entity_id.into())) }))
}

fn set_world_description(world: &World, text: &str) -> Change {
    change(Kind::SetField(SetField {
        resource_kind: ResourceKind::World.into(),
        resource_id: world.id.clone(),
        field: "description".into(),
        proposed_value: text.into(),
        ..SetField::default()
    }))
}

/// A job of `user`, through the worker's token.
struct Job {
    id: Uuid,
    token: String,
}

fn job_of(worker: &DelegationIssuer, user: &TestUser) -> Job {
    let id = Uuid::now_v7();
    Job { id, token: worker.token_for_job(user.id.parse().expect("a user id"), id) }
}

async fn propose(app: &TestApp, job: &Job, world_id: &str, changes: Vec<Change>) -> Result<Proposal, Status> {
    let proposal = Proposal { title: "What the co-writer found".into(), changes, ..Proposal::default() };
    let request = CreateProposalRequest { world_id: world_id.into(), proposal: Some(proposal) };
    proposals(app).create_proposal(authed(request, &job.token)).await.map(|r| r.into_inner())
}

async fn accept(app: &TestApp, token: &str, request: AcceptProposalRequest) -> Result<Proposal, Status> {
    proposals(app).accept_proposal(authed(request, token)).await.map(|r| r.into_inner())
}

fn accept_all(id: &str) -> AcceptProposalRequest {
    AcceptProposalRequest { id: id.into(), ..AcceptProposalRequest::default() }
}

async fn reject(app: &TestApp, token: &str, id: &str, change_ids: &[&str]) -> Result<Proposal, Status> {
    let change_ids = change_ids.iter().map(|c| (*c).to_owned()).collect();
    let request = RejectProposalRequest { id: id.into(), change_ids, etag: String::new() };
    proposals(app).reject_proposal(authed(request, token)).await.map(|r| r.into_inner())
}

async fn get(app: &TestApp, token: &str, id: &str) -> Result<Proposal, Status> {
    proposals(app).get_proposal(authed(GetProposalRequest { id: id.into() }, token)).await.map(|r| r.into_inner())
}

async fn entity_names(app: &TestApp, token: &str, world_id: &str) -> Vec<String> {
    let request = ListEntitiesRequest { world_id: world_id.into(), page_size: 100, ..Default::default() };
    let entities = app.entities().list_entities(authed(request, token)).await.expect("list").into_inner().entities;
    let mut names: Vec<String> = entities.into_iter().map(|e| e.name).collect();
    names.sort();
    names
}

async fn world_of(app: &TestApp, token: &str, id: &str) -> World {
    app.worlds().get_world(authed(GetWorldRequest { id: id.into() }, token)).await.expect("get world").into_inner()
}

fn states(proposal: &Proposal) -> Vec<ChangeState> {
    proposal.changes.iter().map(Change::state).collect()
}

async fn accepting_all_applies_every_change_as_the_proposals(backend: Backend) {
    let (app, worker, _dir) = app_with_worker(backend, |_| {}).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let story = app.create_story(&alice, &world.id, "Tale", Visibility::Private).await;
    let job = job_of(&worker, &alice);
    let mira = Uuid::now_v7().to_string();
    let event = Event { title: "The sailing".into(), year: 1204, story_id: Some(story.id.clone()), ..Event::default() };
    let changes = vec![
        create_entity("Mira", &mira),
        link_entity(&story.id, &mira),
        change(Kind::CreateEvent(Event { entity_ids: vec![mira.clone()], ..event })),
        set_world_description(&world, "Rivers and salt."),
    ];
    let proposal = propose(&app, &job, &world.id, changes).await.expect("propose");
    assert_eq!(
        (proposal.state(), proposal.job_id.as_str(), proposal.user_id.as_str()),
        (ProposalState::ProposalOpen, job.id.to_string().as_str(), alice.id.as_str())
    );
    let ids: Vec<&str> = proposal.changes.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2", "c3", "c4"]);
    let Some(Kind::SetField(set)) = &proposal.changes[3].kind else { panic!("a set field") };
    assert_eq!(
        (set.current_value.as_str(), proposal.changes[3].etag.as_str()),
        ("", world.etag.as_str()),
        "the value and etag it was proposed against"
    );
    assert!(entity_names(&app, &alice.token, &world.id).await.is_empty(), "a proposal writes nothing");

    let accepted = accept(&app, &alice.token, accept_all(&proposal.id)).await.expect("accept");

    assert_eq!(accepted.state(), ProposalState::ProposalAccepted);
    assert_eq!(states(&accepted), [ChangeState::ChangeApplied; 4]);
    assert_eq!(accepted.decided_by, alice.id);
    assert_eq!(entity_names(&app, &alice.token, &world.id).await, ["Mira"]);
    let linked = app.stories().get_story(authed(GetStoryRequest { id: story.id.clone() }, &alice.token)).await;
    assert_eq!(linked.expect("the story").into_inner().entity_ids, vec![mira.clone()], "linked to the story");
    let request = ListEventsRequest { world_id: world.id.clone(), ..Default::default() };
    let events = app.events().list_events(authed(request, &alice.token)).await.expect("events").into_inner().events;
    assert_eq!(
        events.iter().map(|e| (e.title.as_str(), e.entity_ids.clone())).collect::<Vec<_>>(),
        [("The sailing", vec![mira.clone()])]
    );
    assert_eq!(world_of(&app, &alice.token, &world.id).await.description, "Rivers and salt.");
    let request = ListRevisionsRequest { resource_id: mira.clone(), ..Default::default() };
    let history = app.revisions().list_revisions(authed(request, &alice.token)).await.expect("history").into_inner();
    let author = history.revisions[0].author.clone().expect("an author");
    assert_eq!(author.user_id, alice.id, "who accepted");
    assert_eq!(author.via, Some(Via::JobId(job.id.to_string())), "for the proposal's job");
    assert_eq!(author.proposal_id, proposal.id, "and the proposal");
}

async fn a_partial_accept_applies_the_chosen_changes_with_their_edits(backend: Backend) {
    let (app, worker, _dir) = app_with_worker(backend, |_| {}).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let story = app.create_story(&alice, &world.id, "Tale", Visibility::Private).await;
    let (hale, borin) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    let changes = vec![
        create_entity("Mira Vael", ""),
        create_entity("Hale", &hale),
        link_entity(&story.id, &hale),
        create_entity("Borin", &borin),
        link_entity(&story.id, &borin),
    ];
    let proposal = propose(&app, &job_of(&worker, &alice), &world.id, changes).await.expect("propose");
    let fixed = Entity { name: "Mira Vale".into(), description: "A sailor.".into(), ..Entity::default() };
    let request = AcceptProposalRequest {
        id: proposal.id.clone(),
        change_ids: vec!["c1".into(), "c2".into(), "c3".into(), "c5".into()],
        edits: vec![ChangeEdit { change_id: "c1".into(), value: Some(change_edit::Value::Entity(fixed)) }],
        etag: proposal.etag.clone(),
    };

    let accepted = accept(&app, &alice.token, request).await.expect("a partial accept");

    use ChangeState::{ChangeApplied as Applied, ChangeDeclined as Declined};
    assert_eq!(states(&accepted), [Applied, Applied, Applied, Declined, Declined], "Borin's link goes with Borin");
    assert_eq!(entity_names(&app, &alice.token, &world.id).await, ["Hale", "Mira Vale"], "the edit is what was made");
    let Some(Kind::CreateEntity(mira)) = &accepted.changes[0].kind else { panic!("a create") };
    assert_eq!(
        (mira.name.as_str(), mira.description.as_str()),
        ("Mira Vale", "A sailor."),
        "the proposal keeps the edit"
    );
    let story = app.stories().get_story(authed(GetStoryRequest { id: story.id.clone() }, &alice.token)).await;
    assert_eq!(story.unwrap().into_inner().entity_ids, [hale], "only the chosen link");
}

async fn a_stale_change_makes_the_accept_apply_nothing(backend: Backend) {
    let (app, worker, _dir) = app_with_worker(backend, |_| {}).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let changes =
        vec![create_entity("Mira", ""), set_world_description(&world, "From the model."), create_entity("Hale", "")];
    let proposal = propose(&app, &job_of(&worker, &alice), &world.id, changes).await.expect("propose");
    let edit = UpdateWorldRequest {
        world: Some(World { id: world.id.clone(), description: "By hand.".into(), ..World::default() }),
        update_mask: Some(FieldMask { paths: vec!["description".into()] }),
    };
    app.worlds().update_world(authed(edit, &alice.token)).await.expect("a person edits the world");
    let request = CreateEntityRequest {
        world_id: world.id.clone(),
        entity: Some(Entity { name: "HALE".into(), ..Entity::default() }),
        request_id: String::new(),
    };
    app.entities().create_entity(authed(request, &alice.token)).await.expect("a person makes Hale");

    let refused = accept(&app, &alice.token, accept_all(&proposal.id)).await;

    let status = expect_code(refused, Code::FailedPrecondition, "PROPOSAL_STALE", "the world changed since");
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.metadata.get("stale_change_ids").map(String::as_str), Some("c2,c3"), "{status:?}");
    let named: Vec<String> = status
        .get_details_precondition_failure()
        .expect("violations")
        .violations
        .into_iter()
        .map(|v| v.subject)
        .collect();
    assert_eq!(named, ["c2", "c3"]);
    assert_eq!(entity_names(&app, &alice.token, &world.id).await, ["HALE"], "Mira was not made either");
    assert_eq!(world_of(&app, &alice.token, &world.id).await.description, "By hand.");
    let still = get(&app, &alice.token, &proposal.id).await.expect("get");
    assert_eq!(
        (still.state(), still.etag.as_str()),
        (ProposalState::ProposalOpen, proposal.etag.as_str()),
        "still open, unchanged"
    );

    let request = AcceptProposalRequest { change_ids: vec!["c1".into()], ..accept_all(&proposal.id) };
    accept(&app, &alice.token, request).await.expect("the change still fresh is accepted alone");
    assert_eq!(entity_names(&app, &alice.token, &world.id).await, ["HALE", "Mira"]);
}

async fn rejected_and_accepted_proposals_are_decided_for_good(backend: Backend) {
    let (app, worker, _dir) = app_with_worker(backend, |_| {}).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let two = vec![create_entity("Mira", ""), create_entity("Hale", "")];
    let first = propose(&app, &job_of(&worker, &alice), &world.id, two.clone()).await.expect("propose");

    let partly = reject(&app, &alice.token, &first.id, &["c1"]).await.expect("reject one change");
    assert_eq!(
        (partly.state(), states(&partly)),
        (ProposalState::ProposalOpen, vec![ChangeState::ChangeDeclined, ChangeState::ChangePending])
    );
    let rejected = reject(&app, &alice.token, &first.id, &[]).await.expect("reject the rest");
    assert_eq!(rejected.state(), ProposalState::ProposalRejected);
    assert_eq!(rejected.decided_by, alice.id);
    expect_code(
        accept(&app, &alice.token, accept_all(&first.id)).await,
        Code::FailedPrecondition,
        "PROPOSAL_DECIDED",
        "accept a rejected one",
    );
    assert!(entity_names(&app, &alice.token, &world.id).await.is_empty(), "a rejection writes nothing");

    let second = propose(&app, &job_of(&worker, &alice), &world.id, two).await.expect("propose again");
    accept(&app, &alice.token, accept_all(&second.id)).await.expect("accept");
    let again = accept(&app, &alice.token, accept_all(&second.id)).await;
    expect_code(again, Code::FailedPrecondition, "PROPOSAL_DECIDED", "a second accept");
    expect_code(
        reject(&app, &alice.token, &second.id, &[]).await,
        Code::FailedPrecondition,
        "PROPOSAL_DECIDED",
        "reject an accepted one",
    );
    assert_eq!(entity_names(&app, &alice.token, &world.id).await, ["Hale", "Mira"], "applied once");

    let listed = |state: ProposalState| ListProposalsRequest {
        world_id: world.id.clone(),
        state: state.into(),
        ..Default::default()
    };
    let all = proposals(&app)
        .list_proposals(authed(listed(ProposalState::Unspecified), &alice.token))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = all.proposals.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, [second.id.as_str(), first.id.as_str()], "newest first");
    let rejected = proposals(&app).list_proposals(authed(listed(ProposalState::ProposalRejected), &alice.token)).await;
    assert_eq!(
        rejected.unwrap().into_inner().proposals.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        vec![first.id.clone()]
    );
    let request = ListProposalsRequest { page_size: 1, ..listed(ProposalState::Unspecified) };
    let page = proposals(&app).list_proposals(authed(request.clone(), &alice.token)).await.unwrap().into_inner();
    let request = ListProposalsRequest { page_token: page.next_page_token, ..request };
    let next = proposals(&app).list_proposals(authed(request, &alice.token)).await.unwrap().into_inner();
    assert_eq!(
        (page.proposals[0].id.as_str(), next.proposals[0].id.as_str()),
        (second.id.as_str(), first.id.as_str()),
        "paged"
    );
}

async fn owners_and_co_authors_decide_readers_are_refused_strangers_see_nothing(backend: Backend) {
    let (app, worker, _dir) = app_with_worker(backend, |_| {}).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Shared", Visibility::Public).await;
    let co = app.register_member(&alice, &world.id, "cora", ShareRole::CoAuthor).await;
    let reader = app.register_member(&alice, &world.id, "rhea", ShareRole::Reader).await;
    let stranger = app.register("sam").await;
    let proposal = propose(&app, &job_of(&worker, &alice), &world.id, vec![create_entity("Mira", "")]).await.unwrap();
    let listing = ListProposalsRequest { world_id: world.id.clone(), ..Default::default() };

    for (who, token) in [("the owner", &alice.token), ("a co-author", &co.token)] {
        assert_eq!(get(&app, token, &proposal.id).await.expect(who).id, proposal.id, "{who} sees it");
        let listed = proposals(&app).list_proposals(authed(listing.clone(), token)).await.expect(who);
        assert_eq!(listed.into_inner().proposals.len(), 1, "{who} lists it");
    }
    let refusals = [
        (&reader, Code::PermissionDenied, "PERMISSION_DENIED", "a reader of the world"),
        (&stranger, Code::NotFound, "NOT_FOUND", "a stranger, even to a public world"),
    ];
    for (who, code, want, why) in refusals {
        expect_code(get(&app, &who.token, &proposal.id).await, code, want, why);
        expect_code(accept(&app, &who.token, accept_all(&proposal.id)).await, code, want, why);
        expect_code(reject(&app, &who.token, &proposal.id, &[]).await, code, want, why);
        let listed = proposals(&app).list_proposals(authed(listing.clone(), &who.token)).await;
        expect_code(listed, code, want, why);
    }
    let by_hand = Job { id: Uuid::nil(), token: alice.token.clone() };
    let refused = propose(&app, &by_hand, &world.id, vec![create_entity("Hale", "")]).await;
    expect_code(refused, Code::PermissionDenied, "PERMISSION_DENIED", "a person's own token proposes");
    let for_reader = propose(&app, &job_of(&worker, &reader), &world.id, vec![create_entity("Hale", "")]).await;
    expect_code(for_reader, Code::PermissionDenied, "PERMISSION_DENIED", "a job of a reader proposes");
    let accepted = accept(&app, &co.token, accept_all(&proposal.id)).await.expect("a co-author accepts");
    assert_eq!(accepted.decided_by, co.id);

    let describe = vec![set_world_description(&world, "Told anew.")];
    let of_world = propose(&app, &job_of(&worker, &alice), &world.id, describe).await.unwrap();
    let refused = accept(&app, &co.token, accept_all(&of_world.id)).await;
    expect_code(refused, Code::PermissionDenied, "PERMISSION_DENIED", "a co-author changes the world itself");
    accept(&app, &alice.token, accept_all(&of_world.id)).await.expect("its owner may");
    assert_eq!(world_of(&app, &alice.token, &world.id).await.description, "Told anew.");
}

async fn open_proposals_expire_and_the_sweep_marks_them(backend: Backend) {
    let (app, worker, _dir) = app_with_worker(backend, |s| s.proposal_ttl = Duration::ZERO).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let proposal = propose(&app, &job_of(&worker, &alice), &world.id, vec![create_entity("Mira", "")]).await.unwrap();

    assert_eq!(proposal.state(), ProposalState::ProposalExpired, "open longer than a zero time to live");
    let late = accept(&app, &alice.token, accept_all(&proposal.id)).await;
    expect_code(late, Code::FailedPrecondition, "PROPOSAL_EXPIRED", "accept an expired proposal");
    assert!(entity_names(&app, &alice.token, &world.id).await.is_empty());
    let listed = |state: ProposalState| ListProposalsRequest {
        world_id: world.id.clone(),
        state: state.into(),
        ..Default::default()
    };
    let open = proposals(&app).list_proposals(authed(listed(ProposalState::ProposalOpen), &alice.token)).await;
    assert!(open.unwrap().into_inner().proposals.is_empty(), "not listed as open");

    let swept = story_service::proposals::expire_due(app.db().await).await.expect("the sweep");

    assert_eq!(swept, 1);
    assert_eq!(
        app.count("proposals WHERE id = $1 AND state = 'EXPIRED'", &[&proposal.id]).await,
        1,
        "stored as expired"
    );
    let expired = proposals(&app).list_proposals(authed(listed(ProposalState::ProposalExpired), &alice.token)).await;
    assert_eq!(expired.unwrap().into_inner().proposals[0].id, proposal.id, "kept, read-only");
    assert_eq!(story_service::proposals::expire_due(app.db().await).await.unwrap(), 0, "swept once");
}

async fn undoing_an_accepted_proposal_skips_what_a_person_edited_since(backend: Backend) {
    let (app, worker, _dir) = app_with_worker(backend, |_| {}).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let job = job_of(&worker, &alice);
    let changes = vec![create_entity("Mira", ""), create_entity("Hale", "")];
    let proposal = propose(&app, &job, &world.id, changes).await.unwrap();
    accept(&app, &alice.token, accept_all(&proposal.id)).await.expect("accept");
    let Some(Kind::CreateEntity(hale)) = proposal.changes[1].kind.clone() else { panic!("a create") };
    let hale =
        app.entities().get_entity(authed(GetEntityRequest { id: hale.id }, &alice.token)).await.unwrap().into_inner();
    let edit = Entity {
        id: hale.id.clone(),
        etag: hale.etag.clone(),
        description: "Alice's words.".into(),
        ..Entity::default()
    };
    let request =
        UpdateEntityRequest { entity: Some(edit), update_mask: Some(FieldMask { paths: vec!["description".into()] }) };
    app.entities().update_entity(authed(request, &alice.token)).await.expect("a person edits Hale");

    let request = UndoJobRequest { job_id: job.id.to_string() };
    let undone = app.revisions().undo_job(authed(request, &alice.token)).await.expect("undo the job").into_inner();

    assert_eq!(undone.undone.len(), 1, "Mira is undone: {undone:?}");
    assert_eq!(
        undone.skipped.iter().map(|s| (s.resource_id.as_str(), s.reason.as_str())).collect::<Vec<_>>(),
        [(hale.id.as_str(), "CHANGED_SINCE")]
    );
    assert_eq!(entity_names(&app, &alice.token, &world.id).await, ["Hale"], "Hale, edited by Alice, stays");
}

async fn refuses_bad_proposals_naming_each_field(backend: Backend) {
    let (app, worker, _dir) = app_with_worker(backend, |_| {}).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Home", Visibility::Private).await;
    let other = app.create_world(&alice, "Elsewhere", Visibility::Private).await;
    let elsewhere = app.create_story(&alice, &other.id, "Far", Visibility::Private).await;
    let job = job_of(&worker, &alice);
    let set = |field: &str, value: &str| {
        change(Kind::SetField(SetField {
            field: field.into(),
            proposed_value: value.into(),
            ..match set_world_description(&world, "").kind {
                Some(Kind::SetField(s)) => s,
                _ => unreachable!(),
            }
        }))
    };
    let cases: Vec<(Vec<Change>, &[&str], &str)> = vec![
        (vec![], &["proposal.changes"], "no change"),
        (vec![create_entity("", "")], &["proposal.changes[0].create_entity.name"], "a nameless entity"),
        (vec![create_entity("A", "not-an-id")], &["proposal.changes[0].create_entity.id"], "a malformed id"),
        (vec![Change::default()], &["proposal.changes[0].kind"], "no kind"),
        (vec![set("visibility", "PUBLIC")], &["proposal.changes[0].set_field.field"], "a field proposals may not set"),
        (
            vec![link_entity(&elsewhere.id, &Uuid::now_v7().to_string())],
            &["proposal.changes[0].link.story_id", "proposal.changes[0].link"],
            "a story of another world, an unknown item",
        ),
        (
            vec![create_entity("A", ""), create_entity("", "x")],
            &["proposal.changes[1].create_entity.id", "proposal.changes[1].create_entity.name"],
            "every problem at once",
        ),
    ];
    for (changes, fields, why) in cases {
        let status = propose(&app, &job, &world.id, changes).await.expect_err(why);
        assert_eq!(status.code(), Code::InvalidArgument, "{why}: {status:?}");
        let mut named = bad_fields(&status);
        named.sort();
        let mut fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        fields.sort();
        assert_eq!(named, fields, "{why}");
    }
    let proposal = propose(&app, &job, &world.id, vec![create_entity("Mira", "")]).await.unwrap();
    let again = propose(&app, &job, &world.id, vec![create_entity("Other", "")]).await.unwrap();
    assert_eq!(again, proposal, "one job has one proposal");
    let bad_accepts = [
        (
            AcceptProposalRequest { change_ids: vec!["c9".into()], ..accept_all(&proposal.id) },
            "change_ids",
            "an unknown change",
        ),
        (
            AcceptProposalRequest {
                edits: vec![ChangeEdit { change_id: "c1".into(), value: Some(change_edit::Value::Text("x".into())) }],
                ..accept_all(&proposal.id)
            },
            "edits[0].value",
            "an edit of another kind",
        ),
        (
            AcceptProposalRequest {
                edits: vec![ChangeEdit {
                    change_id: "c1".into(),
                    value: Some(change_edit::Value::Entity(Entity::default())),
                }],
                ..accept_all(&proposal.id)
            },
            "edits[0].entity.name",
            "an edit that empties the name",
        ),
        (accept_all("p1"), "id", "a malformed id"),
    ];
    for (request, field, why) in bad_accepts {
        let status = accept(&app, &alice.token, request).await.expect_err(why);
        assert_eq!(status.code(), Code::InvalidArgument, "{why}: {status:?}");
        expect_field_within(&status, field, why);
    }
    let wrong = AcceptProposalRequest { etag: "\"9\"".into(), ..accept_all(&proposal.id) };
    expect_code(
        accept(&app, &alice.token, wrong).await,
        Code::Aborted,
        "ETAG_MISMATCH",
        "a stale etag of the proposal",
    );
    expect_code(get(&app, &alice.token, &unknown_id()).await, Code::NotFound, "NOT_FOUND", "an unknown proposal");
}
