//! AccountService: registration, sign-in, refresh tokens, profiles and their
//! administration; every method's happy path and each error it returns.

use crate::common;

use std::{collections::HashSet, time::Duration};

use common::*;
use fabula_contracts::pb::{
    accounts::{
        ChangePasswordRequest, GetMeRequest, ListUsersRequest, LoginRequest, LogoutRequest, RefreshTokenRequest,
        RegisterRequest, Role, UpdateMeRequest, UpdateUserRequest, User,
    },
    story::Visibility,
};
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

both_databases!(
    registers_signs_in_and_reads_itself,
    register_refuses_bad_input,
    register_refuses_taken_usernames_and_emails,
    login_errors_do_not_tell_unknown_users_from_wrong_passwords,
    repeated_failures_lock_the_account_briefly,
    refresh_rotates_and_a_reused_token_revokes_its_family,
    logout_revokes_the_session,
    update_me_changes_the_profile,
    change_password_ends_every_session,
    administrators_list_users,
    administrators_change_roles_and_flags,
);

fn register(username: &str, email: &str, password: &str) -> RegisterRequest {
    RegisterRequest { username: username.into(), email: email.into(), password: password.into() }
}

fn login(login: &str, password: &str) -> LoginRequest {
    LoginRequest { login: login.into(), password: password.into() }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

fn users(page_size: i32, page_token: &str, filter: &str) -> ListUsersRequest {
    ListUsersRequest { page_size, page_token: page_token.into(), filter: filter.into() }
}

async fn registers_signs_in_and_reads_itself(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut accounts = app.accounts();
    let registered =
        accounts.register(register("Alice_W-1", "alice@example.test", PASSWORD)).await.unwrap().into_inner();
    let user = registered.user.clone().expect("the user");
    assert_eq!(user.username, "Alice_W-1", "the username is kept as typed");
    assert_eq!(user.email, "alice@example.test");
    assert_eq!(user.role(), Role::User, "new accounts are USERs");
    assert!(!user.disabled && !user.gpt_enabled, "new accounts are enabled, without model access");
    assert!(user.create_time.is_some());
    assert!(!registered.access_token.is_empty() && !registered.refresh_token.is_empty());
    assert_eq!(registered.expires_in, 900, "access tokens last 15 minutes");
    assert_eq!(app.count("users WHERE id = $1", &[&user.id]).await, 1);
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(&user.id)
        .fetch_one(app.db().await)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "passwords are stored as Argon2id hashes, not {stored:?}");

    let me = accounts.get_me(authed(GetMeRequest {}, &registered.access_token)).await.unwrap().into_inner();
    assert_eq!(me, user, "GetMe returns the registered user");

    for (login_as, why) in [
        ("Alice_W-1", "by username"),
        ("alice_w-1", "by username, ignoring case"),
        ("alice@example.test", "by email"),
        ("ALICE@example.test", "by email, ignoring case"),
    ] {
        let signed_in = accounts.login(login(login_as, PASSWORD)).await.unwrap_or_else(|e| panic!("{why}: {e:?}"));
        let signed_in = signed_in.into_inner();
        assert_eq!(signed_in.user.as_ref().map(|u| &u.id), Some(&user.id), "{why}");
        assert_ne!(signed_in.refresh_token, registered.refresh_token, "{why}: each sign-in is a new session");
        let me = accounts.get_me(authed(GetMeRequest {}, &signed_in.access_token)).await;
        assert_eq!(me.unwrap().into_inner().id, user.id, "{why}: the token works");
    }
    expect_code(accounts.get_me(GetMeRequest {}).await, Code::Unauthenticated, "TOKEN_MISSING", "GetMe anonymously");
}

async fn register_refuses_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut accounts = app.accounts();
    let long_name = "a".repeat(51);
    let long_password = "p".repeat(129);
    let cases = vec![
        BadFields {
            request: register("ab", "a@example.test", PASSWORD),
            fields: &["username"],
            why: "a username of 2 characters",
        },
        BadFields {
            request: register(&long_name, "a@example.test", PASSWORD),
            fields: &["username"],
            why: "a username of 51 characters",
        },
        BadFields {
            request: register("john doe", "a@example.test", PASSWORD),
            fields: &["username"],
            why: "a space in the username",
        },
        BadFields {
            request: register("jöhn", "a@example.test", PASSWORD),
            fields: &["username"],
            why: "a non-ASCII username",
        },
        BadFields {
            request: register("john@x.y", "a@example.test", PASSWORD),
            fields: &["username"],
            why: "an @ in the username",
        },
        BadFields { request: register("", "a@example.test", PASSWORD), fields: &["username"], why: "no username" },
        BadFields {
            request: register("john", "not-an-email", PASSWORD),
            fields: &["email"],
            why: "an email without @",
        },
        BadFields {
            request: register("john", "john@localhost", PASSWORD),
            fields: &["email"],
            why: "an email without a dotted domain",
        },
        BadFields { request: register("john", "", PASSWORD), fields: &["email"], why: "no email" },
        BadFields {
            request: register("john", "a@example.test", "123456789"),
            fields: &["password"],
            why: "a password of 9 characters",
        },
        BadFields {
            request: register("john", "a@example.test", &long_password),
            fields: &["password"],
            why: "a password of 129 characters",
        },
        BadFields { request: register("john", "a@example.test", ""), fields: &["password"], why: "no password" },
        BadFields {
            request: register("", "", ""),
            fields: &["username", "email", "password"],
            why: "every bad field is named at once",
        },
    ];
    for BadFields { request, fields, why } in cases {
        let status = expect_code(accounts.register(request).await, Code::InvalidArgument, "INVALID_ARGUMENT", why);
        let named = bad_fields(&status);
        for field in fields {
            assert!(named.iter().any(|n| n == field), "{why}: BadRequest names {named:?}, missing {field}");
        }
        assert!(!status.message().contains(PASSWORD), "{why}: no password in the message");
    }
    assert_eq!(app.count("users", &[]).await, 1, "only the administrator exists");
    // The bounds themselves are fine.
    accounts.register(register("abc", "abc@example.test", "0123456789")).await.expect("3 and 10 characters");
    let longest = register(&"z".repeat(50), "z@example.test", &"p".repeat(128));
    accounts.register(longest).await.expect("50 and 128 characters");
}

/// A registration refused as ALREADY_EXISTS with the `ErrorInfo.reason` `want`; `why` says what was taken.
struct Taken {
    request: RegisterRequest,
    want: &'static str,
    why: &'static str,
}

async fn register_refuses_taken_usernames_and_emails(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut accounts = app.accounts();
    app.register("alice").await;
    let cases = [
        Taken {
            request: register("alice", "other@example.test", PASSWORD),
            want: "USERNAME_TAKEN",
            why: "the same username",
        },
        Taken {
            request: register("ALICE", "other@example.test", PASSWORD),
            want: "USERNAME_TAKEN",
            why: "the username in other case",
        },
        Taken {
            request: register("alicia", "alice@example.test", PASSWORD),
            want: "EMAIL_TAKEN",
            why: "the same email",
        },
        Taken {
            request: register("alicia", "Alice@Example.TEST", PASSWORD),
            want: "EMAIL_TAKEN",
            why: "the email in other case",
        },
    ];
    for Taken { request, want, why } in cases {
        expect_code(accounts.register(request).await, Code::AlreadyExists, want, why);
    }
    assert_eq!(app.count("users", &[]).await, 2, "the administrator and alice");
}

async fn login_errors_do_not_tell_unknown_users_from_wrong_passwords(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let alice = app.register("alice").await;
    let mut accounts = app.accounts();

    let wrong = expect_code(
        accounts.login(login("alice", "wrong password!")).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
        "a wrong password",
    );
    let unknown = expect_code(
        accounts.login(login("nobody", "wrong password!")).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
        "an unknown user",
    );
    assert_eq!(wrong.message(), unknown.message(), "the same words for both");

    let invalid = [
        BadInput { request: login("", PASSWORD), field: "login", why: "no login" },
        BadInput { request: login("   ", PASSWORD), field: "login", why: "a login of spaces" },
        BadInput { request: login("alice", ""), field: "password", why: "no password" },
    ];
    for BadInput { request, field, why } in invalid {
        expect_invalid(accounts.login(request).await, field, why);
    }

    let disable = UpdateUserRequest {
        user: Some(User { id: alice.id.clone(), disabled: true, ..User::default() }),
        update_mask: mask(&["disabled"]),
    };
    accounts.update_user(authed(disable, &admin.token)).await.expect("disable alice");
    expect_code(
        accounts.login(login("alice", PASSWORD)).await,
        Code::Unauthenticated,
        "USER_DISABLED",
        "a disabled user with the right password",
    );
}

async fn repeated_failures_lock_the_account_briefly(backend: Backend) {
    let app = spawn_app(backend).await;
    app.register("alice").await;
    let mut accounts = app.accounts();
    // An account counts its failures however it is named; a login naming no account
    // is answered the same way, lock included, so the lock shows no account exists.
    let attempts = ["alice", "ALICE", "alice@example.test", "alice", "Alice"];
    for (attempt, name) in attempts.iter().enumerate() {
        for who in [*name, "nobody"] {
            expect_code(
                accounts.login(login(who, "wrong password!")).await,
                Code::Unauthenticated,
                "INVALID_CREDENTIALS",
                &format!("failed attempt {} as {who}", attempt + 1),
            );
        }
    }
    let unknown = expect_code(
        accounts.login(login("nobody", "wrong password!")).await,
        Code::ResourceExhausted,
        "LOGIN_THROTTLED",
        "an unknown login, as locked as a known one",
    );
    assert!(unknown.get_details_retry_info().is_some(), "{unknown:?}");
    for (password, why) in [("wrong password!", "a sixth wrong try"), (PASSWORD, "even the right password")] {
        let status = expect_code(
            accounts.login(login("alice", password)).await,
            Code::ResourceExhausted,
            "LOGIN_THROTTLED",
            &format!("{why}, while locked"),
        );
        let retry = status.get_details_retry_info().and_then(|r| r.retry_delay);
        assert!(retry.is_some_and(|d| d > Duration::ZERO), "{why}: a RetryInfo says when ({status:?})");
    }
    // Deliberate: the throttling window is the subject; the lock ends after a second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    accounts.login(login("alice", PASSWORD)).await.expect("the lock of the fifth failure lasts a second");
    expect_code(
        accounts.login(login("alice", "wrong password!")).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
        "a success clears the count: the next failure is free again",
    );
}

async fn refresh_rotates_and_a_reused_token_revokes_its_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let mut accounts = app.accounts();
    let refresh = |token: &str| RefreshTokenRequest { refresh_token: token.into() };
    let other_session = accounts.login(login("alice", PASSWORD)).await.unwrap().into_inner();

    let next = accounts.refresh_token(refresh(&alice.refresh_token)).await.unwrap().into_inner();
    assert_ne!(next.refresh_token, alice.refresh_token, "a refresh hands out a new refresh token");
    assert_eq!(next.user.as_ref().map(|u| &u.id), Some(&alice.id));
    assert_eq!(next.expires_in, 900);
    accounts.get_me(authed(GetMeRequest {}, &next.access_token)).await.expect("the new access token works");

    expect_code(
        accounts.refresh_token(refresh(&alice.refresh_token)).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
        "a refresh token used a second time",
    );
    expect_code(
        accounts.refresh_token(refresh(&next.refresh_token)).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
        "the reuse revoked the rest of its family",
    );
    accounts
        .refresh_token(refresh(&other_session.refresh_token))
        .await
        .expect("another sign-in is another family, untouched");

    expect_code(
        accounts.refresh_token(refresh("rt_not-a-token-we-made")).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_INVALID",
        "a refresh token the service never made",
    );
    expect_code(
        accounts.refresh_token(refresh(&alice.token)).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_INVALID",
        "an access token is no refresh token",
    );
    expect_invalid(accounts.refresh_token(refresh("")).await, "refresh_token", "no refresh token");
}

async fn logout_revokes_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let mut accounts = app.accounts();
    let logout = |token: &str| LogoutRequest { refresh_token: token.into() };
    accounts.logout(logout(&alice.refresh_token)).await.expect("logout");
    expect_code(
        accounts.refresh_token(RefreshTokenRequest { refresh_token: alice.refresh_token.clone() }).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
        "a refresh token after its logout",
    );
    accounts.logout(logout(&alice.refresh_token)).await.expect("logging out twice is fine");
    accounts.logout(logout("rt_unknown")).await.expect("an unknown token is signed out already");
    expect_invalid(accounts.logout(logout("")).await, "refresh_token", "no refresh token");
}

async fn update_me_changes_the_profile(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    app.register("bob").await;
    let mut accounts = app.accounts();
    let update = |user: User, paths: &[&str]| {
        authed(
            UpdateMeRequest { user: Some(user), update_mask: if paths.is_empty() { None } else { mask(paths) } },
            &alice.token,
        )
    };

    let named = User { display_name: "Alice W.".into(), email: "ignored@example.test".into(), ..User::default() };
    let updated = accounts.update_me(update(named, &["display_name"])).await.unwrap().into_inner();
    assert_eq!(updated.display_name, "Alice W.");
    assert_eq!(updated.email, alice.email, "a field outside the mask is kept");

    let moved = User { email: "alice@elsewhere.test".into(), ..User::default() };
    let updated = accounts.update_me(update(moved, &[])).await.unwrap().into_inner();
    assert_eq!(updated.email, "alice@elsewhere.test", "no mask: the populated fields change");
    assert_eq!(updated.display_name, "Alice W.");
    let read = accounts.get_me(authed(GetMeRequest {}, &alice.token)).await.unwrap().into_inner();
    assert_eq!(read, updated, "the change was stored");
    accounts.login(login("alice@elsewhere.test", PASSWORD)).await.expect("sign in with the new email");

    let invalid = vec![
        BadInput {
            request: UpdateMeRequest { user: None, update_mask: None },
            field: "user",
            why: "the user is required",
        },
        BadInput {
            request: UpdateMeRequest {
                user: Some(User { email: "nope".into(), ..User::default() }),
                update_mask: None,
            },
            field: "user.email",
            why: "a bad email",
        },
        BadInput {
            request: UpdateMeRequest {
                user: Some(User { display_name: "n".repeat(101), ..User::default() }),
                update_mask: mask(&["display_name"]),
            },
            field: "user.display_name",
            why: "a display name of 101 characters",
        },
        BadInput {
            request: UpdateMeRequest {
                user: Some(User { display_name: "   ".into(), ..User::default() }),
                update_mask: mask(&["display_name"]),
            },
            field: "user.display_name",
            why: "a blank display name in the mask",
        },
        BadInput {
            request: UpdateMeRequest {
                user: Some(User { username: "new".into(), ..User::default() }),
                update_mask: mask(&["username"]),
            },
            field: "update_mask",
            why: "the username cannot be changed",
        },
        BadInput {
            request: UpdateMeRequest {
                user: Some(User { role: Role::Admin.into(), ..User::default() }),
                update_mask: mask(&["role"]),
            },
            field: "update_mask",
            why: "a user cannot change their own role",
        },
    ];
    for BadInput { request, field, why } in invalid {
        expect_invalid(accounts.update_me(authed(request, &alice.token)).await, field, why);
    }
    let taken = User { email: "BOB@example.test".into(), ..User::default() };
    expect_code(
        accounts.update_me(update(taken, &["email"])).await,
        Code::AlreadyExists,
        "EMAIL_TAKEN",
        "another user's email",
    );
    let me = accounts.get_me(authed(GetMeRequest {}, &alice.token)).await.unwrap().into_inner();
    assert_eq!(me.role(), Role::User, "still a USER");
    let cleared = accounts.update_me(update(User::default(), &["display_name"])).await.expect("cleared").into_inner();
    assert_eq!(cleared.display_name, "", "an empty display name in the mask clears it");
    expect_code(
        accounts.update_me(UpdateMeRequest { user: Some(User::default()), update_mask: None }).await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
        "UpdateMe anonymously",
    );
}

async fn change_password_ends_every_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let mut accounts = app.accounts();
    let change = |current: &str, new: &str| {
        authed(ChangePasswordRequest { current_password: current.into(), new_password: new.into() }, &alice.token)
    };
    expect_invalid(accounts.change_password(change("", "a new password")).await, "current_password", "no current");
    expect_invalid(accounts.change_password(change(PASSWORD, "short")).await, "new_password", "a short new one");
    expect_code(
        accounts.change_password(change("not my password", "a new password")).await,
        Code::PermissionDenied,
        "WRONG_PASSWORD",
        "a wrong current password",
    );
    // A token issued a moment before the change, most likely in the same second.
    let just_before = accounts.login(login("alice", PASSWORD)).await.expect("log in").into_inner().access_token;
    accounts.change_password(change(PASSWORD, "a new password")).await.expect("change the password");

    for (token, what) in
        [(&alice.token, "an access token from before the change"), (&just_before, "one issued just before it")]
    {
        expect_code(
            accounts.get_me(authed(GetMeRequest {}, token)).await,
            Code::Unauthenticated,
            "TOKEN_REVOKED",
            what,
        );
    }
    expect_code(
        accounts.refresh_token(RefreshTokenRequest { refresh_token: alice.refresh_token.clone() }).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
        "a refresh token from before the change",
    );
    expect_code(
        accounts.login(login("alice", PASSWORD)).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
        "the old password",
    );
    let fresh = accounts.login(login("alice", "a new password")).await.expect("the new password").into_inner();
    accounts.get_me(authed(GetMeRequest {}, &fresh.access_token)).await.expect("a token from after the change");
}

async fn administrators_list_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut accounts = app.accounts();
    let list = |request: ListUsersRequest| authed(request, &admin.token);

    let everyone = accounts.list_users(list(users(0, "", ""))).await.unwrap().into_inner();
    let names: HashSet<_> = everyone.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, HashSet::from([ADMIN_USERNAME, "alice", "bob"]));
    assert_eq!(everyone.total_size, 3);

    let admins = accounts.list_users(list(users(0, "", r#"role = "ADMIN""#))).await.unwrap().into_inner();
    assert_eq!(admins.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), vec![admin.id.as_str()]);
    let with_model = accounts.list_users(list(users(0, "", "gpt_enabled = true"))).await.unwrap().into_inner();
    let with_model: Vec<_> = with_model.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(with_model, [ADMIN_USERNAME], "the configured administrator may use the model at once; no one else");
    let disable = UpdateUserRequest {
        user: Some(User { id: bob.id.clone(), disabled: true, ..User::default() }),
        update_mask: None,
    };
    accounts.update_user(authed(disable, &admin.token)).await.expect("disable bob");
    let disabled = accounts.list_users(list(users(0, "", "disabled = true"))).await.unwrap().into_inner();
    assert_eq!(disabled.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), vec![bob.id.as_str()]);

    let (mut seen, mut token) = (Vec::new(), String::new());
    loop {
        let page = accounts.list_users(list(users(1, &token, ""))).await.unwrap().into_inner();
        assert_eq!(page.total_size, 3);
        seen.extend(page.users.into_iter().map(|u| u.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        let reused = accounts.list_users(list(users(1, &token, "disabled = false"))).await;
        expect_invalid(reused, "page_token", "a page token reused with another filter");
    }
    assert_eq!(seen.len(), 3);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 3, "each user once");

    let invalid = [
        BadInput { request: users(-5, "", ""), field: "page_size", why: "a negative page size" },
        BadInput { request: users(0, "", "email = x"), field: "filter", why: "a field that cannot be filtered on" },
        BadInput { request: users(0, "", "role = KING"), field: "filter", why: "an unknown role" },
        BadInput {
            request: users(0, "", "disabled = maybe"),
            field: "filter",
            why: "a flag that is not true or false",
        },
        BadInput { request: users(0, "nonsense", ""), field: "page_token", why: "a page token the service never made" },
    ];
    for BadInput { request, field, why } in invalid {
        expect_invalid(accounts.list_users(list(request)).await, field, why);
    }
    expect_code(
        accounts.list_users(authed(users(0, "", ""), &alice.token)).await,
        Code::PermissionDenied,
        "ADMIN_ONLY",
        "a USER lists users",
    );
    expect_code(
        accounts.list_users(users(0, "", "")).await,
        Code::Unauthenticated,
        "TOKEN_MISSING",
        "anonymous lists users",
    );
}

async fn administrators_change_roles_and_flags(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let alice = app.register("alice").await;
    let mut accounts = app.accounts();
    let update = |user: User, paths: &[&str]| {
        authed(
            UpdateUserRequest { user: Some(user), update_mask: if paths.is_empty() { None } else { mask(paths) } },
            &admin.token,
        )
    };

    let promoted = accounts
        .update_user(update(
            User { id: alice.id.clone(), role: Role::Moderator.into(), gpt_enabled: true, ..User::default() },
            &[],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((promoted.role(), promoted.gpt_enabled, promoted.disabled), (Role::Moderator, true, false));
    // The new role counts at once, even with a token issued when alice was a USER:
    // a MODERATOR may own 20 public worlds.
    app.create_world(&alice, "One", Visibility::Public).await;
    app.create_world(&alice, "Two", Visibility::Public).await;

    let revoked = accounts
        .update_user(update(User { id: alice.id.clone(), ..User::default() }, &["gpt_enabled"]))
        .await
        .unwrap()
        .into_inner();
    assert!(!revoked.gpt_enabled, "a masked false turns model access off");
    assert_eq!(revoked.role(), Role::Moderator, "the role is kept");

    accounts
        .update_user(update(User { id: alice.id.clone(), disabled: true, ..User::default() }, &["disabled"]))
        .await
        .unwrap();
    expect_code(
        accounts.login(login("alice", PASSWORD)).await,
        Code::Unauthenticated,
        "USER_DISABLED",
        "a disabled user signs in",
    );
    let enabled = accounts
        .update_user(update(User { id: alice.id.clone(), disabled: false, ..User::default() }, &["disabled"]))
        .await
        .unwrap()
        .into_inner();
    assert!(!enabled.disabled);
    accounts.login(login("alice", PASSWORD)).await.expect("enabled again, alice signs in");

    let invalid = vec![
        BadInput {
            request: UpdateUserRequest { user: None, update_mask: None },
            field: "user",
            why: "the user is required",
        },
        BadInput {
            request: UpdateUserRequest {
                user: Some(User { id: "x".into(), gpt_enabled: true, ..User::default() }),
                update_mask: None,
            },
            field: "user.id",
            why: "a bad id",
        },
        BadInput {
            request: UpdateUserRequest {
                user: Some(User { id: alice.id.clone(), ..User::default() }),
                update_mask: mask(&["role"]),
            },
            field: "user.role",
            why: "an unspecified role in the mask",
        },
        BadInput {
            request: UpdateUserRequest {
                user: Some(User { id: alice.id.clone(), role: 42, ..User::default() }),
                update_mask: None,
            },
            field: "user.role",
            why: "an unknown role",
        },
        BadInput {
            request: UpdateUserRequest {
                user: Some(User { id: alice.id.clone(), ..User::default() }),
                update_mask: mask(&["email"]),
            },
            field: "update_mask",
            why: "administrators do not change emails",
        },
    ];
    for BadInput { request, field, why } in invalid {
        expect_invalid(accounts.update_user(authed(request, &admin.token)).await, field, why);
    }
    expect_code(
        accounts.update_user(update(User { id: unknown_id(), gpt_enabled: true, ..User::default() }, &[])).await,
        Code::NotFound,
        "NOT_FOUND",
        "an unknown user",
    );
    expect_code(
        accounts
            .update_user(update(User { id: admin.id.clone(), disabled: true, ..User::default() }, &["disabled"]))
            .await,
        Code::PermissionDenied,
        "SELF_LOCKOUT",
        "an administrator disables themselves",
    );
    expect_code(
        accounts
            .update_user(update(User { id: admin.id.clone(), role: Role::User.into(), ..User::default() }, &["role"]))
            .await,
        Code::PermissionDenied,
        "SELF_LOCKOUT",
        "an administrator demotes themselves",
    );
    let by_alice = UpdateUserRequest {
        user: Some(User { id: alice.id.clone(), role: Role::Admin.into(), ..User::default() }),
        update_mask: None,
    };
    let fresh = accounts.login(login("alice", PASSWORD)).await.unwrap().into_inner();
    expect_code(
        accounts.update_user(authed(by_alice, &fresh.access_token)).await,
        Code::PermissionDenied,
        "ADMIN_ONLY",
        "a moderator makes themselves an administrator",
    );
}
