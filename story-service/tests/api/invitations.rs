//! InvitationService: an owner invites by username or email address, the invitee
//! accepts (the world is shared with them then, not before) or declines, the owner
//! revokes; invitations expire; an invitation by email tells the inviter nothing about
//! which addresses have accounts; who may do which.

use crate::common;

use std::time::Duration;

use common::*;
use fabula_contracts::pb::story::{
    AcceptInvitationRequest, AcceptInvitationResponse, DeclineInvitationRequest, GetWorldRequest, Invitation,
    InvitationState, InviteCollaboratorRequest, ListMyInvitationsRequest, ListWorldInvitationsRequest,
    ListWorldSharesRequest, RevokeInvitationRequest, ShareRole, UnshareWorldRequest, Visibility, invitation,
    invite_collaborator_request::Invitee,
};
use tonic::{Code, Status};

both_databases!(
    an_accepted_invitation_shares_the_world_and_a_second_accept_is_refused,
    inviting_again_updates_the_pending_invitation,
    an_invitation_by_email_answers_alike_and_reaches_whoever_has_the_address,
    a_declined_or_revoked_invitation_cannot_be_accepted,
    invitations_expire_unanswered,
    of_an_accept_and_a_revoke_at_once_one_wins,
    refuses_bad_invitations_naming_each_field,
    who_may_invite_answer_revoke_and_list,
);

fn by_username(world_id: &str, username: &str, role: ShareRole) -> InviteCollaboratorRequest {
    InviteCollaboratorRequest {
        world_id: world_id.into(),
        invitee: Some(Invitee::Username(username.into())),
        role: role.into(),
        message: String::new(),
    }
}

fn by_email(world_id: &str, email: &str, role: ShareRole) -> InviteCollaboratorRequest {
    InviteCollaboratorRequest { invitee: Some(Invitee::Email(email.into())), ..by_username(world_id, "", role) }
}

async fn invite(app: &TestApp, token: Option<&str>, request: InviteCollaboratorRequest) -> Result<Invitation, Status> {
    app.invitations().invite_collaborator(as_caller(request, token)).await.map(|r| r.into_inner())
}

async fn accept(app: &TestApp, token: Option<&str>, id: &str) -> Result<AcceptInvitationResponse, Status> {
    let request = AcceptInvitationRequest { id: id.into() };
    app.invitations().accept_invitation(as_caller(request, token)).await.map(|r| r.into_inner())
}

async fn decline(app: &TestApp, token: Option<&str>, id: &str) -> Result<Invitation, Status> {
    let request = DeclineInvitationRequest { id: id.into() };
    app.invitations().decline_invitation(as_caller(request, token)).await.map(|r| r.into_inner())
}

async fn revoke(app: &TestApp, token: Option<&str>, id: &str) -> Result<Invitation, Status> {
    let request = RevokeInvitationRequest { id: id.into() };
    app.invitations().revoke_invitation(as_caller(request, token)).await.map(|r| r.into_inner())
}

/// The caller's pending invitations, every page of `page_size`.
async fn mine(app: &TestApp, token: &str, page_size: i32) -> Vec<Invitation> {
    let (mut all, mut page_token) = (Vec::new(), String::new());
    loop {
        let request = ListMyInvitationsRequest { page_size, page_token };
        let page = app.invitations().list_my_invitations(authed(request, token)).await.expect("my invitations");
        let page = page.into_inner();
        all.extend(page.invitations);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

async fn of_world(app: &TestApp, token: Option<&str>, world_id: &str) -> Result<Vec<Invitation>, Status> {
    let request = ListWorldInvitationsRequest { world_id: world_id.into(), page_size: 0, page_token: String::new() };
    let page = app.invitations().list_world_invitations(as_caller(request, token)).await?;
    Ok(page.into_inner().invitations)
}

fn ids(invitations: &[Invitation]) -> Vec<&str> {
    invitations.iter().map(|i| i.id.as_str()).collect()
}

async fn reads_world(app: &TestApp, token: &str, world_id: &str) -> bool {
    app.worlds().get_world(authed(GetWorldRequest { id: world_id.into() }, token)).await.is_ok()
}

async fn an_accepted_invitation_shares_the_world_and_a_second_accept_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let world = app.create_world(&alice, "Secret", Visibility::Private).await;

    let request = InviteCollaboratorRequest {
        message: "Come write the north with me".into(),
        ..by_username(&world.id, "BOB", ShareRole::CoAuthor)
    };
    let sent = invite(&app, Some(&alice.token), request).await.expect("alice invites bob by username");
    assert_eq!(sent.invitee, Some(invitation::Invitee::Username("bob".into())), "named by the stored username");
    assert_eq!((sent.state(), sent.role()), (InvitationState::Pending, ShareRole::CoAuthor));
    assert_eq!((sent.world_name.as_str(), sent.inviter_username.as_str()), ("Secret", "alice"));
    assert_eq!(sent.inviter_id, alice.id);
    let (created, expires) = (sent.create_time.unwrap(), sent.expire_time.unwrap());
    assert_eq!(expires.seconds - created.seconds, 14 * 86_400, "the default time to answer is 14 days");
    assert!(!reads_world(&app, &bob.token, &world.id).await, "no share before the answer");
    assert_eq!(app.count("world_shares WHERE world_id = $1", &[&world.id]).await, 0);

    let listed = mine(&app, &bob.token, 0).await;
    assert_eq!(listed, vec![sent.clone()], "bob sees the invitation as alice got it");
    assert_eq!(ids(&of_world(&app, Some(&alice.token), &world.id).await.unwrap()), vec![sent.id.as_str()]);

    let accepted = accept(&app, Some(&bob.token), &sent.id).await.expect("bob accepts");
    let share = accepted.share.expect("the share it made");
    assert_eq!((share.user_id.as_str(), share.role()), (bob.id.as_str(), ShareRole::CoAuthor));
    assert_eq!(accepted.invitation.map(|i| i.state()), Some(InvitationState::Accepted));
    assert!(reads_world(&app, &bob.token, &world.id).await, "bob reads the world once he accepted");
    let shares = app
        .worlds()
        .list_world_shares(authed(ListWorldSharesRequest { world_id: world.id.clone() }, &alice.token))
        .await
        .unwrap()
        .into_inner()
        .shares;
    assert_eq!(
        shares.iter().map(|s| (s.username.as_str(), s.role())).collect::<Vec<_>>(),
        [("bob", ShareRole::CoAuthor)]
    );
    assert!(mine(&app, &bob.token, 0).await.is_empty(), "an answered invitation leaves bob's list");
    assert!(of_world(&app, Some(&alice.token), &world.id).await.unwrap().is_empty(), "and the world's");

    let again = accept(&app, Some(&bob.token), &sent.id).await;
    expect_code(again, Code::FailedPrecondition, "INVITATION_ACCEPTED", "a second accept");
    let declined = decline(&app, Some(&bob.token), &sent.id).await;
    expect_code(declined, Code::FailedPrecondition, "INVITATION_ACCEPTED", "a decline after the accept");
    expect_code(
        invite(&app, Some(&alice.token), by_username(&world.id, "bob", ShareRole::Reader)).await,
        Code::AlreadyExists,
        "ALREADY_COLLABORATOR",
        "inviting a user the world is shared with",
    );
}

async fn inviting_again_updates_the_pending_invitation(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let world = app.create_world(&alice, "Secret", Visibility::Private).await;
    let other = app.create_world(&alice, "Other", Visibility::Private).await;

    let first = invite(&app, Some(&alice.token), by_username(&world.id, "bob", ShareRole::Reader)).await.unwrap();
    let request = InviteCollaboratorRequest {
        message: "Write too".into(),
        ..by_username(&world.id, &bob.id, ShareRole::CoAuthor)
    };
    let second = invite(&app, Some(&alice.token), request).await.expect("invite again, by id");
    assert_eq!(second.id, first.id, "the pending invitation, updated");
    assert_eq!((second.role(), second.message.as_str()), (ShareRole::CoAuthor, "Write too"));
    assert_eq!(second.create_time, first.create_time);
    let at = |time: &Option<prost_types::Timestamp>| time.as_ref().map(|t| (t.seconds, t.nanos));
    assert!(at(&second.update_time) >= at(&first.update_time), "updated");
    assert!(at(&second.expire_time) >= at(&first.expire_time), "renewed");
    assert_eq!(app.count("invitations WHERE world_id = $1", &[&world.id]).await, 1, "one row");
    let elsewhere = invite(&app, Some(&alice.token), by_username(&other.id, "bob", ShareRole::Reader)).await.unwrap();
    assert_ne!(elsewhere.id, first.id, "another world, another invitation");

    // Two pages of one: newest first.
    assert_eq!(ids(&mine(&app, &bob.token, 1).await), vec![elsewhere.id.as_str(), first.id.as_str()]);
    let accepted = accept(&app, Some(&bob.token), &first.id).await.unwrap();
    assert_eq!(accepted.share.map(|s| s.role()), Some(ShareRole::CoAuthor), "the role of the last invitation");

    // Once answered, a new invitation is a new one.
    app.worlds()
        .unshare_world(authed(
            UnshareWorldRequest { world_id: world.id.clone(), user_id: bob.id.clone() },
            &alice.token,
        ))
        .await
        .unwrap();
    let third = invite(&app, Some(&alice.token), by_username(&world.id, "bob", ShareRole::Reader)).await.unwrap();
    assert_ne!(third.id, first.id);
    assert_eq!(third.state(), InvitationState::Pending);
}

/// `invitation` without what differs from one invitation to another (its id, times and address).
fn shape(invitation: &Invitation) -> Invitation {
    Invitation {
        id: String::new(),
        invitee: Some(invitation::Invitee::Email(String::new())),
        create_time: None,
        update_time: None,
        expire_time: None,
        ..invitation.clone()
    }
}

async fn an_invitation_by_email_answers_alike_and_reaches_whoever_has_the_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let world = app.create_world(&alice, "Secret", Visibility::Private).await;

    let to_bob = invite(&app, Some(&alice.token), by_email(&world.id, "Bob@Example.TEST", ShareRole::Reader)).await;
    let to_bob = to_bob.expect("an address with an account");
    let to_nobody = invite(&app, Some(&alice.token), by_email(&world.id, "dora@example.test", ShareRole::Reader)).await;
    let to_nobody = to_nobody.expect("an address without one");
    assert_eq!(shape(&to_bob), shape(&to_nobody), "the same answer either way");
    assert_eq!(to_bob.invitee, Some(invitation::Invitee::Email("Bob@Example.TEST".into())), "as typed");
    let listed = of_world(&app, Some(&alice.token), &world.id).await.unwrap();
    assert_eq!(listed.iter().map(shape).collect::<Vec<_>>(), vec![shape(&to_nobody); 2], "and in the list");
    let stored = app.count("invitations WHERE invitee_id IS NULL AND world_id = $1", &[&world.id]).await;
    assert_eq!(stored, 2, "an address is stored, not looked up");

    assert_eq!(ids(&mine(&app, &bob.token, 0).await), vec![to_bob.id.as_str()], "bob's address, in any case");
    assert!(mine(&app, &carol.token, 0).await.is_empty(), "carol sees neither");
    expect_code(accept(&app, Some(&carol.token), &to_bob.id).await, Code::NotFound, "NOT_FOUND", "carol accepts bob's");

    // Whoever registers the address later finds the invitation waiting.
    let dora = app.register("dora").await;
    assert_eq!(ids(&mine(&app, &dora.token, 0).await), vec![to_nobody.id.as_str()]);
    let accepted = accept(&app, Some(&dora.token), &to_nobody.id).await.expect("dora accepts");
    assert_eq!(accepted.share.map(|s| s.username), Some("dora".into()));
    assert!(reads_world(&app, &dora.token, &world.id).await);
    accept(&app, Some(&bob.token), &to_bob.id).await.expect("bob accepts");
    assert!(reads_world(&app, &bob.token, &world.id).await);
}

async fn a_declined_or_revoked_invitation_cannot_be_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let world = app.create_world(&alice, "Secret", Visibility::Private).await;

    let sent = invite(&app, Some(&alice.token), by_username(&world.id, "bob", ShareRole::Reader)).await.unwrap();
    let declined = decline(&app, Some(&bob.token), &sent.id).await.expect("bob declines");
    assert_eq!(declined.state(), InvitationState::Declined);
    let late = accept(&app, Some(&bob.token), &sent.id).await;
    expect_code(late, Code::FailedPrecondition, "INVITATION_DECLINED", "an accept after the decline");
    let withdrawn = revoke(&app, Some(&alice.token), &sent.id).await;
    expect_code(withdrawn, Code::FailedPrecondition, "INVITATION_DECLINED", "a revoke after the decline");
    assert!(!reads_world(&app, &bob.token, &world.id).await, "no share");

    let sent = invite(&app, Some(&alice.token), by_username(&world.id, "bob", ShareRole::Reader)).await.unwrap();
    let revoked = revoke(&app, Some(&alice.token), &sent.id).await.expect("alice revokes");
    assert_eq!(revoked.state(), InvitationState::Revoked);
    assert!(mine(&app, &bob.token, 0).await.is_empty(), "gone from bob's list");
    for (answer, what) in [
        (accept(&app, Some(&bob.token), &sent.id).await.map(|_| ()), "an accept after the revoke"),
        (decline(&app, Some(&bob.token), &sent.id).await.map(|_| ()), "a decline after the revoke"),
    ] {
        expect_code(answer, Code::FailedPrecondition, "INVITATION_REVOKED", what);
    }
    let again = revoke(&app, Some(&alice.token), &sent.id).await.expect("a second revoke changes nothing");
    assert_eq!((again.state(), again.update_time), (InvitationState::Revoked, revoked.update_time));
    assert!(!reads_world(&app, &bob.token, &world.id).await, "still no share");
}

async fn of_an_accept_and_a_revoke_at_once_one_wins(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let world = app.create_world(&alice, "Secret", Visibility::Private).await;
    for round in 0..5 {
        let sent = invite(&app, Some(&alice.token), by_username(&world.id, "bob", ShareRole::Reader)).await.unwrap();
        let (accepted, revoked) =
            tokio::join!(accept(&app, Some(&bob.token), &sent.id), revoke(&app, Some(&alice.token), &sent.id));
        assert!(accepted.is_ok() != revoked.is_ok(), "round {round}: one of {accepted:?} and {revoked:?}");
        let loser = accepted.as_ref().err().or(revoked.as_ref().err()).expect("a loser");
        assert_eq!(loser.code(), Code::FailedPrecondition, "round {round}: {loser:?}");
        let shared = app.count("world_shares WHERE user_id = $1", &[&bob.id]).await;
        assert_eq!(shared, i64::from(accepted.is_ok()), "round {round}: a share exactly when the accept won");
        let unshare = UnshareWorldRequest { world_id: world.id.clone(), user_id: bob.id.clone() };
        let _ = app.worlds().unshare_world(authed(unshare, &alice.token)).await;
    }
}

async fn invitations_expire_unanswered(backend: Backend) {
    // Every invitation expires as it is sent.
    let app = spawn_app_with(backend, |settings| settings.invitation_ttl = Duration::ZERO).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let world = app.create_world(&alice, "Secret", Visibility::Private).await;

    let sent = invite(&app, Some(&alice.token), by_username(&world.id, "bob", ShareRole::Reader)).await.unwrap();
    assert_eq!(sent.state(), InvitationState::Expired);
    assert!(mine(&app, &bob.token, 0).await.is_empty(), "an expired invitation is not the invitee's to answer");
    let listed = of_world(&app, Some(&alice.token), &world.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|i| (i.id.as_str(), i.state())).collect::<Vec<_>>(),
        [(sent.id.as_str(), InvitationState::Expired)]
    );
    for (answer, what) in [
        (accept(&app, Some(&bob.token), &sent.id).await.map(|_| ()), "an accept"),
        (decline(&app, Some(&bob.token), &sent.id).await.map(|_| ()), "a decline"),
    ] {
        expect_code(answer, Code::FailedPrecondition, "INVITATION_EXPIRED", what);
    }
    assert!(!reads_world(&app, &bob.token, &world.id).await);

    let renewed = invite(&app, Some(&alice.token), by_username(&world.id, "bob", ShareRole::Reader)).await.unwrap();
    assert_eq!(renewed.id, sent.id, "inviting again renews the expired invitation");
    let revoked = revoke(&app, Some(&alice.token), &sent.id).await.expect("the owner withdraws an expired one");
    assert_eq!(revoked.state(), InvitationState::Revoked);
    assert!(of_world(&app, Some(&alice.token), &world.id).await.unwrap().is_empty());
}

async fn refuses_bad_invitations_naming_each_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let world = app.create_world(&alice, "Secret", Visibility::Private).await;
    let good = by_username(&world.id, "bob", ShareRole::Reader);

    let table = vec![
        BadInput { request: by_username("nope", "bob", ShareRole::Reader), field: "world_id", why: "a bad world id" },
        BadInput {
            request: InviteCollaboratorRequest { invitee: None, ..good.clone() },
            field: "invitee",
            why: "nobody",
        },
        BadInput {
            request: by_username(&world.id, "", ShareRole::Reader),
            field: "username",
            why: "an empty username",
        },
        BadInput { request: by_username(&world.id, "bo b", ShareRole::Reader), field: "username", why: "a space" },
        BadInput { request: by_email(&world.id, "not-an-address", ShareRole::Reader), field: "email", why: "no @" },
        BadInput {
            request: by_email(&world.id, &format!("{}@x.test", "a".repeat(260)), ShareRole::Reader),
            field: "email",
            why: "too long",
        },
        BadInput { request: by_username(&world.id, "bob", ShareRole::Unspecified), field: "role", why: "no role" },
        BadInput {
            request: InviteCollaboratorRequest { role: 9, ..good.clone() },
            field: "role",
            why: "an unknown role",
        },
        BadInput {
            request: InviteCollaboratorRequest { message: "m".repeat(1001), ..good.clone() },
            field: "message",
            why: "a message over 1 000 characters",
        },
    ];
    for BadInput { request, field, why } in table {
        expect_invalid(invite(&app, Some(&alice.token), request).await, field, why);
    }
    for (request, why) in [
        (by_username(&world.id, "ALICE", ShareRole::Reader), "yourself"),
        (by_username(&world.id, &alice.id, ShareRole::Reader), "yourself by id"),
        (by_email(&world.id, "alice@EXAMPLE.test", ShareRole::Reader), "your own address"),
    ] {
        expect_code(invite(&app, Some(&alice.token), request).await, Code::AlreadyExists, "ALREADY_COLLABORATOR", why);
    }
    assert_eq!(app.count("invitations", &[]).await, 0, "nothing stored");
    let many = InviteCollaboratorRequest { invitee: None, role: 0, ..by_username("nope", "", ShareRole::Reader) };
    let status = invite(&app, Some(&alice.token), many).await.unwrap_err();
    let mut fields = bad_fields(&status);
    fields.sort();
    assert_eq!(fields, ["invitee", "role", "world_id"], "every bad field at once");

    let unknown = [
        (
            invite(&app, Some(&alice.token), by_username(&world.id, "nobody_here", ShareRole::Reader))
                .await
                .map(|_| ()),
            "an unknown username",
        ),
        (
            invite(&app, Some(&alice.token), by_username(&unknown_id(), "bob", ShareRole::Reader)).await.map(|_| ()),
            "an unknown world",
        ),
        (accept(&app, Some(&alice.token), &unknown_id()).await.map(|_| ()), "accepting an unknown invitation"),
        (decline(&app, Some(&alice.token), &unknown_id()).await.map(|_| ()), "declining one"),
        (revoke(&app, Some(&alice.token), &unknown_id()).await.map(|_| ()), "revoking one"),
        (of_world(&app, Some(&alice.token), &unknown_id()).await.map(|_| ()), "the invitations of an unknown world"),
    ];
    for (answer, what) in unknown {
        expect_code(answer, Code::NotFound, "NOT_FOUND", what);
    }
    for (answer, what) in [
        (accept(&app, Some(&alice.token), "x").await.map(|_| ()), "accept"),
        (decline(&app, Some(&alice.token), "").await.map(|_| ()), "decline"),
        (revoke(&app, Some(&alice.token), "42").await.map(|_| ()), "revoke"),
    ] {
        expect_invalid(answer, "id", what);
    }
    expect_invalid(of_world(&app, Some(&alice.token), "x").await, "world_id", "a bad world id");
    let forged = ListMyInvitationsRequest { page_size: 0, page_token: "forged".into() };
    expect_invalid(
        app.invitations().list_my_invitations(authed(forged, &alice.token)).await,
        "page_token",
        "a forged token",
    );
    let negative = ListMyInvitationsRequest { page_size: -1, page_token: String::new() };
    expect_invalid(app.invitations().list_my_invitations(authed(negative, &alice.token)).await, "page_size", "-1");
}

async fn who_may_invite_answer_revoke_and_list(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let eve = app.register("eve").await;
    let admin = app.admin().await;
    let world = app.create_world(&alice, "Secret", Visibility::Private).await;
    let open = app.create_world(&alice, "Open", Visibility::Public).await;
    let carol = app.register_member(&alice, &world.id, "carol", ShareRole::CoAuthor).await;
    let dave = app.register_member(&alice, &world.id, "dave", ShareRole::Reader).await;

    let invites = [
        (&world, Some(carol.token.as_str()), Code::PermissionDenied, "PERMISSION_DENIED", "a co-author invites"),
        (&world, Some(dave.token.as_str()), Code::PermissionDenied, "PERMISSION_DENIED", "a reader invites"),
        (&world, Some(eve.token.as_str()), Code::NotFound, "NOT_FOUND", "a stranger invites to a private world"),
        (
            &open,
            Some(eve.token.as_str()),
            Code::PermissionDenied,
            "PERMISSION_DENIED",
            "a stranger invites to a public world",
        ),
        (&world, None, Code::Unauthenticated, "TOKEN_MISSING", "an anonymous caller invites"),
    ];
    for (target, token, code, want, why) in invites {
        expect_code(invite(&app, token, by_username(&target.id, "bob", ShareRole::Reader)).await, code, want, why);
        expect_code(of_world(&app, token, &target.id).await, code, want, why);
    }
    assert_eq!(app.count("invitations", &[]).await, 0, "none of them invited");
    let by_admin = invite(&app, Some(&admin.token), by_username(&world.id, "bob", ShareRole::Reader)).await;
    let sent = by_admin.expect("an administrator invites");
    assert_eq!(sent.inviter_username, admin.username);
    assert_eq!(of_world(&app, Some(&admin.token), &world.id).await.unwrap().len(), 1, "and lists");

    // Only bob answers; only the owner (or an administrator) revokes.
    let answers = [
        (Some(eve.token.as_str()), Code::NotFound, "NOT_FOUND", "a stranger"),
        (Some(carol.token.as_str()), Code::NotFound, "NOT_FOUND", "a co-author, who may not invite"),
        (Some(alice.token.as_str()), Code::PermissionDenied, "PERMISSION_DENIED", "the owner, who sees it"),
        (None, Code::Unauthenticated, "TOKEN_MISSING", "an anonymous caller"),
    ];
    for (token, code, want, who) in answers {
        expect_code(accept(&app, token, &sent.id).await, code, want, &format!("{who} accepts bob's invitation"));
        expect_code(decline(&app, token, &sent.id).await, code, want, &format!("{who} declines it"));
    }
    let revokes = [
        (Some(eve.token.as_str()), Code::NotFound, "NOT_FOUND", "a stranger revokes"),
        (Some(dave.token.as_str()), Code::NotFound, "NOT_FOUND", "a reader revokes"),
        (Some(bob.token.as_str()), Code::PermissionDenied, "PERMISSION_DENIED", "the invitee revokes"),
        (None, Code::Unauthenticated, "TOKEN_MISSING", "an anonymous caller revokes"),
    ];
    for (token, code, want, why) in revokes {
        expect_code(revoke(&app, token, &sent.id).await, code, want, why);
    }
    assert_eq!(mine(&app, &bob.token, 0).await.len(), 1, "still pending after every refusal");
    expect_code(
        app.invitations().list_my_invitations(ListMyInvitationsRequest::default()).await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
        "an anonymous caller lists their invitations",
    );
    accept(&app, Some(&bob.token), &sent.id).await.expect("bob accepts");
    assert!(reads_world(&app, &bob.token, &world.id).await);
}
