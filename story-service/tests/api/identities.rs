//! IdentityService: signing in with an OpenID Connect provider (a fake one on loopback,
//! real HTTP: discovery, JWKS, authorization and token endpoints), by ID token and by
//! the code flow; accounts created at a first sign-in; linking and unlinking.

use crate::common;

use std::time::Duration;

use common::*;
use fabula_contracts::pb::accounts::{
    AuthResponse, FinishOidcSignInRequest, Identity, LinkIdentityRequest, ListMyIdentitiesRequest,
    ListOidcProvidersRequest, LoginRequest, SignInWithIdTokenRequest, StartOidcSignInRequest, UnlinkIdentityRequest,
    UpdateUserRequest, User,
};
use fabula_testkit::fake_oidc::{CLIENT_ID, CLIENT_SECRET, FakeOidc, TestKey};
use prost_types::FieldMask;
use serde_json::{Value, json};
use story_service::config::OidcProvider;
use tonic::{Code, Request, Status};

both_databases!(
    an_id_token_signs_in_and_creates_the_account_once,
    refused_id_tokens_sign_nobody_in,
    rotated_keys_are_fetched_when_a_token_names_one,
    unknown_keys_are_fetched_at_most_once_per_floor,
    the_code_flow_signs_in_and_its_state_works_once,
    an_existing_email_is_linked_only_by_its_signed_in_owner,
    unlinking_keeps_a_way_to_sign_in,
    disabled_accounts_do_not_sign_in_with_identities,
);

const REDIRECT_URI: &str = "http://fabula.test/signin/oidc/fake";

/// story-service with the fake provider configured as `fake`, its keys fetched again
/// no sooner than `floor` after the last fetch.
async fn spawn_with_provider(backend: Backend, floor: Duration) -> (TestApp, FakeOidc) {
    let fake = FakeOidc::start().await;
    let text = format!(
        "name=fake,issuer={},client_id={CLIENT_ID},client_secret={CLIENT_SECRET},redirect_uri={REDIRECT_URI}",
        fake.issuer
    );
    let provider = OidcProvider::parse(&text).expect("the fake provider's settings");
    let app = spawn_app_with(backend, |settings| {
        settings.oidc.providers = vec![provider];
        settings.oidc.jwks_refetch_floor = floor;
    })
    .await;
    (app, fake)
}

fn with_token(id_token: String) -> SignInWithIdTokenRequest {
    SignInWithIdTokenRequest { provider: "fake".into(), id_token, nonce: String::new() }
}

async fn sign_in(app: &TestApp, id_token: String) -> Result<AuthResponse, Status> {
    app.identities().sign_in_with_id_token(with_token(id_token)).await.map(tonic::Response::into_inner)
}

fn link(id_token: String, token: &str) -> Request<LinkIdentityRequest> {
    authed(LinkIdentityRequest { provider: "fake".into(), id_token, nonce: String::new() }, token)
}

async fn identities_of(app: &TestApp, token: &str) -> Vec<Identity> {
    let mut client = app.identities();
    client.list_my_identities(authed(ListMyIdentitiesRequest {}, token)).await.unwrap().into_inner().identities
}

fn user_of(response: &AuthResponse) -> User {
    response.user.clone().expect("a signed-in answer names its user")
}

async fn an_id_token_signs_in_and_creates_the_account_once(backend: Backend) {
    let (app, fake) = spawn_with_provider(backend, Duration::from_secs(60)).await;
    let providers = app.identities().list_oidc_providers(ListOidcProvidersRequest {}).await.unwrap().into_inner();
    assert_eq!(providers.providers.len(), 1, "the configured provider is listed");
    assert_eq!((providers.providers[0].name.as_str(), providers.providers[0].issuer.as_str()), ("fake", &*fake.issuer));

    app.register("carol").await;
    let mut claims = fake.claims("sub-carol-2", "carol.other@example.test");
    claims["preferred_username"] = json!("carol");
    let first = sign_in(&app, fake.id_token(&claims)).await.expect("a first sign-in creates the account");
    let user = user_of(&first);
    assert_eq!(user.username, "carol-2", "the provider's username, made unique");
    assert_eq!(user.email, "carol.other@example.test");
    let again = sign_in(&app, fake.id_token(&claims)).await.expect("a second sign-in");
    assert_eq!(user_of(&again).id, user.id, "the identity signs in to the account it created");

    let me = app.accounts().get_me(authed(fabula_contracts::pb::accounts::GetMeRequest {}, &again.access_token)).await;
    assert_eq!(me.expect("Fabula's own token works").into_inner().id, user.id);
    let identities = identities_of(&app, &first.access_token).await;
    assert_eq!(identities.len(), 1);
    assert_eq!((identities[0].provider.as_str(), identities[0].subject.as_str()), ("fake", "sub-carol-2"));

    for password in ["!", "correct horse battery"] {
        let login = LoginRequest { login: "carol-2".into(), password: password.into() };
        let refused = app.accounts().login(login).await;
        expect_code(refused, Code::Unauthenticated, "INVALID_CREDENTIALS", "a password for an identity account");
    }
    assert_eq!(app.count("users WHERE email_key = $1", &["carol.other@example.test"]).await, 1, "one account");
}

async fn refused_id_tokens_sign_nobody_in(backend: Backend) {
    let (app, fake) = spawn_with_provider(backend, Duration::from_secs(3600)).await;
    let good = fake.claims("sub-dave", "dave@example.test");
    let changed = |change: &dyn Fn(&mut Value)| {
        let mut claims = good.clone();
        change(&mut claims);
        claims
    };
    let expired = changed(&|c| c["exp"] = json!(fabula_runtime::token::unix_now() - 3600));
    let cases: Vec<(&str, String, &str, Code, &str)> = vec![
        (
            "signed by an unknown key naming the provider's",
            TestKey::Forger.sign("test-a", &good),
            "",
            Code::Unauthenticated,
            "INVALID_ID_TOKEN",
        ),
        (
            "naming a key nobody publishes",
            TestKey::Forger.sign("test-forger", &good),
            "",
            Code::Unauthenticated,
            "INVALID_ID_TOKEN",
        ),
        (
            "for another client",
            fake.id_token(&changed(&|c| c["aud"] = json!("someone-else"))),
            "",
            Code::Unauthenticated,
            "INVALID_ID_TOKEN",
        ),
        (
            "from another issuer",
            fake.id_token(&changed(&|c| c["iss"] = json!("https://evil.example"))),
            "",
            Code::Unauthenticated,
            "INVALID_ID_TOKEN",
        ),
        ("expired", fake.id_token(&expired), "", Code::Unauthenticated, "INVALID_ID_TOKEN"),
        ("not a JWT", "not.a.jwt".into(), "", Code::Unauthenticated, "INVALID_ID_TOKEN"),
        (
            "with another nonce",
            fake.id_token(&changed(&|c| c["nonce"] = json!("old"))),
            "new",
            Code::Unauthenticated,
            "INVALID_ID_TOKEN",
        ),
        ("with no nonce when one is given", fake.id_token(&good), "new", Code::Unauthenticated, "INVALID_ID_TOKEN"),
        (
            "with an unverified email",
            fake.id_token(&changed(&|c| c["email_verified"] = json!(false))),
            "",
            Code::FailedPrecondition,
            "EMAIL_NOT_VERIFIED",
        ),
        (
            "with no email",
            fake.id_token(&changed(&|c| c["email"] = Value::Null)),
            "",
            Code::FailedPrecondition,
            "EMAIL_NOT_VERIFIED",
        ),
    ];
    for (why, id_token, nonce, code, reason) in cases {
        let request = SignInWithIdTokenRequest { provider: "fake".into(), id_token, nonce: nonce.into() };
        expect_code(app.identities().sign_in_with_id_token(request).await, code, reason, why);
    }
    let unknown = SignInWithIdTokenRequest { provider: "nobody".into(), ..with_token(fake.id_token(&good)) };
    expect_code(app.identities().sign_in_with_id_token(unknown).await, Code::NotFound, "NOT_FOUND", "unknown provider");
    let bad = [
        BadInput {
            request: SignInWithIdTokenRequest { provider: String::new(), ..with_token("x".into()) },
            field: "provider",
            why: "no provider",
        },
        BadInput {
            request: SignInWithIdTokenRequest { provider: "a b".into(), ..with_token("x".into()) },
            field: "provider",
            why: "a space",
        },
        BadInput { request: with_token(String::new()), field: "id_token", why: "no token" },
        BadInput { request: with_token("x".repeat(20_000)), field: "id_token", why: "too long" },
    ];
    for case in bad {
        expect_invalid(app.identities().sign_in_with_id_token(case.request).await, case.field, case.why);
    }
    assert_eq!(app.count("users WHERE email_key = $1", &["dave@example.test"]).await, 0, "nobody was created");
    assert_eq!(app.count("user_identities", &[]).await, 0, "nothing was linked");
}

async fn rotated_keys_are_fetched_when_a_token_names_one(backend: Backend) {
    let (app, fake) = spawn_with_provider(backend, Duration::ZERO).await;
    let claims = fake.claims("sub-erin", "erin@example.test");
    let before = sign_in(&app, fake.id_token(&claims)).await.expect("signed with key A");
    assert_eq!(fake.jwks_fetches(), 1);
    fake.rotate();
    let after = sign_in(&app, fake.id_token(&claims)).await.expect("signed with the new key B");
    assert_eq!(user_of(&after).id, user_of(&before).id);
    assert_eq!(fake.jwks_fetches(), 2, "the unknown kid made the keys be fetched again");
    sign_in(&app, TestKey::A.sign("test-a", &claims)).await.expect("key A is still published");
    assert_eq!(fake.jwks_fetches(), 2, "a known kid is no reason to fetch");
}

async fn unknown_keys_are_fetched_at_most_once_per_floor(backend: Backend) {
    let (app, fake) = spawn_with_provider(backend, Duration::from_secs(3600)).await;
    let claims = fake.claims("sub-fay", "fay@example.test");
    sign_in(&app, fake.id_token(&claims)).await.expect("signed with key A");
    for n in 0..5 {
        let forged = TestKey::Forger.sign(&format!("made-up-{n}"), &claims);
        expect_code(sign_in(&app, forged).await, Code::Unauthenticated, "INVALID_ID_TOKEN", "a made-up kid");
    }
    assert_eq!(fake.jwks_fetches(), 1, "made-up kids within the floor fetch nothing");
}

fn start(link: bool) -> StartOidcSignInRequest {
    StartOidcSignInRequest { provider: "fake".into(), link }
}

fn finish(code: &str, state: &str) -> FinishOidcSignInRequest {
    FinishOidcSignInRequest { provider: "fake".into(), code: code.into(), state: state.into() }
}

async fn the_code_flow_signs_in_and_its_state_works_once(backend: Backend) {
    let (app, fake) = spawn_with_provider(backend, Duration::from_secs(60)).await;
    let started = app.identities().start_oidc_sign_in(start(false)).await.unwrap().into_inner();
    let url = reqwest::Url::parse(&started.authorization_url).expect("a URL");
    assert!(started.authorization_url.starts_with(&format!("{}/authorize?", fake.issuer)), "{url}");
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["redirect_uri"], REDIRECT_URI);
    assert_eq!(query["state"], started.state);
    assert!(!query["nonce"].is_empty() && query["code_challenge"].len() == 43, "nonce and S256 challenge: {query:?}");

    let callback = fake.authorize(&started.authorization_url, fake.claims("sub-gil", "gil@example.test")).await;
    assert_eq!(callback.state, started.state, "the provider brings the state back");
    let signed_in = app.identities().finish_oidc_sign_in(finish(&callback.code, &callback.state)).await;
    let user = user_of(&signed_in.expect("the flow signs in").into_inner());
    assert_eq!(user.email, "gil@example.test");

    let replayed = app.identities().finish_oidc_sign_in(finish(&callback.code, &callback.state)).await;
    expect_code(replayed, Code::FailedPrecondition, "OIDC_STATE_UNKNOWN", "a finished state again");
    let unknown = app.identities().finish_oidc_sign_in(finish(&callback.code, "made-up")).await;
    expect_code(unknown, Code::FailedPrecondition, "OIDC_STATE_UNKNOWN", "a state never started");

    // A code of one flow finished with another flow's state fails the PKCE check, and
    // uses that state up.
    let first = app.identities().start_oidc_sign_in(start(false)).await.unwrap().into_inner();
    let second = app.identities().start_oidc_sign_in(start(false)).await.unwrap().into_inner();
    let callback = fake.authorize(&first.authorization_url, fake.claims("sub-hal", "hal@example.test")).await;
    let crossed = app.identities().finish_oidc_sign_in(finish(&callback.code, &second.state)).await;
    expect_code(crossed, Code::Unauthenticated, "OIDC_CODE_REFUSED", "another flow's verifier");
    let used = app.identities().finish_oidc_sign_in(finish(&callback.code, &second.state)).await;
    expect_code(used, Code::FailedPrecondition, "OIDC_STATE_UNKNOWN", "a state used by a refused code");

    let unknown = StartOidcSignInRequest { provider: "nobody".into(), link: false };
    expect_code(app.identities().start_oidc_sign_in(unknown).await, Code::NotFound, "NOT_FOUND", "unknown provider");
    let bad = [
        BadInput { request: finish("", "s"), field: "code", why: "no code" },
        BadInput { request: finish("c", ""), field: "state", why: "no state" },
        BadInput {
            request: FinishOidcSignInRequest { provider: String::new(), ..finish("c", "s") },
            field: "provider",
            why: "no provider",
        },
    ];
    for case in bad {
        expect_invalid(app.identities().finish_oidc_sign_in(case.request).await, case.field, case.why);
    }
}

async fn an_existing_email_is_linked_only_by_its_signed_in_owner(backend: Backend) {
    let (app, fake) = spawn_with_provider(backend, Duration::from_secs(60)).await;
    let ivy = app.register("ivy").await;
    let claims = fake.claims("sub-ivy", "ivy@example.test");
    let refused = sign_in(&app, fake.id_token(&claims)).await;
    expect_code(refused, Code::FailedPrecondition, "IDENTITY_NOT_LINKED", "the email has an account");
    assert_eq!(app.count("user_identities", &[]).await, 0, "nothing was linked silently");

    let linked = app.identities().link_identity(link(fake.id_token(&claims), &ivy.token)).await;
    assert_eq!(linked.expect("ivy links her identity").into_inner().subject, "sub-ivy");
    let signed_in = sign_in(&app, fake.id_token(&claims)).await.expect("the linked identity signs in");
    assert_eq!(user_of(&signed_in).id, ivy.id);
    let jon = app.register("jon").await;
    let taken = app.identities().link_identity(link(fake.id_token(&claims), &jon.token)).await;
    expect_code(taken, Code::AlreadyExists, "IDENTITY_TAKEN", "another account's identity");
    let anonymous = app.identities().start_oidc_sign_in(start(true)).await;
    expect_code(anonymous, Code::Unauthenticated, "TOKEN_MISSING", "a link needs a signed-in user");

    // Through the code flow: only the user who started a link finishes it.
    let second = fake.claims("sub-ivy-work", "ivy@work.example.test");
    let started = app.identities().start_oidc_sign_in(authed(start(true), &ivy.token)).await.unwrap().into_inner();
    let callback = fake.authorize(&started.authorization_url, second.clone()).await;
    let by_jon =
        app.identities().finish_oidc_sign_in(authed(finish(&callback.code, &callback.state), &jon.token)).await;
    expect_code(by_jon, Code::PermissionDenied, "PERMISSION_DENIED", "someone else finishes ivy's link");
    let started = app.identities().start_oidc_sign_in(authed(start(true), &ivy.token)).await.unwrap().into_inner();
    let callback = fake.authorize(&started.authorization_url, second).await;
    let finished =
        app.identities().finish_oidc_sign_in(authed(finish(&callback.code, &callback.state), &ivy.token)).await;
    assert_eq!(user_of(&finished.expect("ivy finishes her link").into_inner()).id, ivy.id);
    let subjects: Vec<_> = identities_of(&app, &ivy.token).await.into_iter().map(|i| i.subject).collect();
    assert_eq!(subjects, ["sub-ivy", "sub-ivy-work"]);
}

async fn unlinking_keeps_a_way_to_sign_in(backend: Backend) {
    let (app, fake) = spawn_with_provider(backend, Duration::from_secs(60)).await;
    let created = sign_in(&app, fake.id_token(&fake.claims("sub-kim", "kim@example.test"))).await.unwrap();
    let token = created.access_token.clone();
    let only = identities_of(&app, &token).await.remove(0);
    let unlink = |id: &str, token: &str| authed(UnlinkIdentityRequest { id: id.into() }, token);
    let last = app.identities().unlink_identity(unlink(&only.id, &token)).await;
    expect_code(last, Code::FailedPrecondition, "LAST_SIGN_IN_METHOD", "the only way to sign in");

    let other = fake.id_token(&fake.claims("sub-kim-2", "kim@example.test"));
    app.identities().link_identity(link(other, &token)).await.expect("a second identity");
    app.identities().unlink_identity(unlink(&only.id, &token)).await.expect("one of two goes");
    let left = identities_of(&app, &token).await;
    assert_eq!(left.len(), 1);
    let last = app.identities().unlink_identity(unlink(&left[0].id, &token)).await;
    expect_code(last, Code::FailedPrecondition, "LAST_SIGN_IN_METHOD", "the last again");

    let lee = app.register("lee").await;
    let someone_elses = app.identities().unlink_identity(unlink(&left[0].id, &lee.token)).await;
    expect_code(someone_elses, Code::NotFound, "NOT_FOUND", "another account's identity");
    let lees = fake.id_token(&fake.claims("sub-lee", "lee@example.test"));
    let linked = app.identities().link_identity(link(lees, &lee.token)).await.unwrap().into_inner();
    app.identities().unlink_identity(unlink(&linked.id, &lee.token)).await.expect("lee keeps her password");
    expect_invalid(app.identities().unlink_identity(unlink("not an id", &lee.token)).await, "id", "a malformed id");
}

async fn disabled_accounts_do_not_sign_in_with_identities(backend: Backend) {
    let (app, fake) = spawn_with_provider(backend, Duration::from_secs(60)).await;
    let claims = fake.claims("sub-max", "max@example.test");
    let user = user_of(&sign_in(&app, fake.id_token(&claims)).await.unwrap());
    let admin = app.admin().await;
    let disable = UpdateUserRequest {
        user: Some(User { id: user.id, disabled: true, ..User::default() }),
        update_mask: Some(FieldMask { paths: vec!["disabled".into()] }),
    };
    app.accounts().update_user(authed(disable, &admin.token)).await.expect("the administrator disables max");
    expect_code(sign_in(&app, fake.id_token(&claims)).await, Code::Unauthenticated, "USER_DISABLED", "disabled");
}
