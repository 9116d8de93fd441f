//! The token matrix: every way an access token can be wrong is UNAUTHENTICATED on
//! `AccountService/GetMe` (policy USER). A token forged correctly with the service's
//! own key is accepted first, so each refusal is down to the one thing changed.

use crate::common;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::*;
use fabula_contracts::pb::accounts::{GetMeRequest, Role, UpdateUserRequest, User};
use fabula_runtime::token::{Claims, SigningKey, unix_now};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use prost_types::FieldMask;
use tonic::{Code, Request};

both_databases!(
    every_bad_token_is_unauthenticated,
    a_disabled_users_tokens_stop_working_within_a_second,
    tokens_of_a_retired_key_are_accepted_while_it_is_listed,
);

/// `header.payload` of a JWT, base64url, with `header` as given.
fn signing_input(header: &serde_json::Value, claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).expect("a header"));
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims"));
    format!("{header}.{payload}")
}

/// An unsigned token: `{"alg":"none"}`, with the real key id, and an empty signature.
fn alg_none(app: &TestApp, claims: &Claims) -> String {
    let header = serde_json::json!({"alg": "none", "typ": "JWT", "kid": app.key.verifying_key().kid()});
    format!("{}.", signing_input(&header, claims))
}

/// The algorithm-confusion attack: HS256, keyed with the service's public key PEM.
fn hs256_with_public_key(app: &TestApp, claims: &Claims) -> String {
    let public_pem = app.key.verifying_key().to_pem();
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": app.key.verifying_key().kid()});
    let input = signing_input(&header, claims);
    let key = EncodingKey::from_secret(public_pem.as_bytes());
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).expect("HMAC signs");
    format!("{input}.{signature}")
}

/// EdDSA signed by `other`, but naming the service's key id.
fn signed_by_another_key_with_our_kid(app: &TestApp, other: &SigningKey, claims: &Claims) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(app.key.verifying_key().kid().to_owned());
    let key = EncodingKey::from_ed_pem(other.to_pem().as_bytes()).expect("an Ed25519 PEM");
    jsonwebtoken::encode(&header, claims, &key).expect("signs")
}

/// A GetMe request with `authorization` set to `value` exactly, or none.
fn get_me(authorization: Option<&str>) -> Request<GetMeRequest> {
    let mut request = Request::new(GetMeRequest {});
    if let Some(value) = authorization {
        request.metadata_mut().insert("authorization", value.parse().expect("ASCII metadata"));
    }
    request
}

/// An `authorization` header (or none) refused as UNAUTHENTICATED with the
/// `ErrorInfo.reason` `want`; `why` says what is wrong with it.
struct BadToken {
    authorization: Option<String>,
    want: &'static str,
    why: &'static str,
}

async fn every_bad_token_is_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let mut accounts = app.accounts();
    let valid = || app.claims(&alice.id);
    let with = |change: &dyn Fn(&mut Claims)| {
        let mut claims = valid();
        change(&mut claims);
        claims
    };
    let bearer = |token: String| Some(format!("Bearer {token}"));

    // The control: a token made here with the service's key is accepted.
    let me = accounts.get_me(get_me(bearer(app.sign(&valid())).as_deref())).await.expect("a well-forged token");
    assert_eq!(me.into_inner().id, alice.id);
    let as_alice = |claims: &Claims| bearer(app.sign(claims));
    let other_key = SigningKey::generate();
    let now = unix_now();

    let cases = vec![
        BadToken { authorization: None, want: "TOKEN_MISSING", why: "no authorization header" },
        BadToken {
            authorization: Some("Bearer abc".into()),
            want: "TOKEN_MALFORMED",
            why: "a bearer token that is no JWT",
        },
        BadToken { authorization: Some("Bearer ".into()), want: "TOKEN_MALFORMED", why: "an empty bearer token" },
        BadToken {
            authorization: Some(format!("Basic {}", URL_SAFE_NO_PAD.encode("alice:pw"))),
            want: "TOKEN_MALFORMED",
            why: "another scheme",
        },
        BadToken {
            authorization: Some(app.sign(&valid())),
            want: "TOKEN_MALFORMED",
            why: "a token without the Bearer scheme",
        },
        BadToken {
            authorization: bearer(other_key.sign(&valid())),
            want: "TOKEN_INVALID",
            why: "signed by another key, with its own key id",
        },
        BadToken {
            authorization: bearer(signed_by_another_key_with_our_kid(&app, &other_key, &valid())),
            want: "TOKEN_INVALID",
            why: "signed by another key, naming the service's key id",
        },
        BadToken {
            authorization: bearer(alg_none(&app, &valid())),
            want: "TOKEN_MALFORMED",
            why: "alg: none, unsigned",
        },
        BadToken {
            authorization: bearer(hs256_with_public_key(&app, &valid())),
            want: "TOKEN_INVALID",
            why: "HS256 keyed with the public key (algorithm confusion)",
        },
        BadToken {
            authorization: as_alice(&with(&|c| {
                c.iat = (now - 7200) as f64;
                c.nbf = now - 7200;
                c.exp = now - 3600;
            })),
            want: "TOKEN_EXPIRED",
            why: "expired an hour ago",
        },
        BadToken {
            authorization: as_alice(&with(&|c| c.nbf = now + 3600)),
            want: "TOKEN_INVALID",
            why: "not valid for another hour (nbf)",
        },
        BadToken {
            authorization: as_alice(&with(&|c| c.iss = "someone-else".into())),
            want: "TOKEN_INVALID",
            why: "a wrong issuer",
        },
        BadToken {
            authorization: as_alice(&with(&|c| c.aud = "another-audience".into())),
            want: "TOKEN_INVALID",
            why: "a wrong audience",
        },
        BadToken {
            authorization: as_alice(&with(&|c| c.typ = "refresh".into())),
            want: "TOKEN_INVALID",
            why: "typ is not access",
        },
        BadToken {
            authorization: as_alice(&with(&|c| c.role = "KING".into())),
            want: "TOKEN_INVALID",
            why: "a role that does not exist",
        },
        BadToken {
            authorization: as_alice(&with(&|c| c.sub = "alice".into())),
            want: "TOKEN_INVALID",
            why: "a subject that is no user id",
        },
        BadToken {
            authorization: as_alice(&with(&|c| c.sub = unknown_id())),
            want: "USER_NOT_FOUND",
            why: "a subject no user has",
        },
        BadToken {
            authorization: bearer(alice.refresh_token.clone()),
            want: "TOKEN_MALFORMED",
            why: "a refresh token used as an access token",
        },
        BadToken {
            authorization: Some(format!("Bearer {}x", app.sign(&valid()))),
            want: "TOKEN_MALFORMED",
            why: "a valid token with its signature changed",
        },
    ];
    for BadToken { authorization, want, why } in cases {
        expect_code(accounts.get_me(get_me(authorization.as_deref())).await, Code::Unauthenticated, want, why);
    }

    // A token that claims ADMIN is not believed beyond the user's stored role.
    let claims_admin = with(&|c| c.role = Role::Admin.as_str_name().into());
    let listed = app.accounts().list_users(authed(Default::default(), &app.sign(&claims_admin))).await;
    expect_code(listed, Code::PermissionDenied, "ADMIN_ONLY", "a USER's token claiming ADMIN");
}

/// A key rotation: the service signs with a new key, and tokens signed with the old
/// one work for as long as the old public key is listed as retired.
async fn tokens_of_a_retired_key_are_accepted_while_it_is_listed(backend: Backend) {
    let retired = SigningKey::generate();
    let keys_dir = tempfile::tempdir().expect("a temporary directory");
    let retired_file = keys_dir.path().join("retired.pub.pem");
    std::fs::write(&retired_file, retired.verifying_key().to_pem()).expect("write the retired key");
    let app = spawn_app_with(backend, |s| s.token_retired_public_keys_file = Some(retired_file)).await;
    let alice = app.register("alice").await;
    let mut accounts = app.accounts();
    let old_token = format!("Bearer {}", retired.sign(&app.claims(&alice.id)));
    let me = accounts.get_me(get_me(Some(&old_token))).await.expect("a token of the retired key");
    assert_eq!(me.into_inner().id, alice.id);
    let new_token = format!("Bearer {}", alice.token);
    accounts.get_me(get_me(Some(&new_token))).await.expect("a token of the current key");

    let unlisted = format!("Bearer {}", SigningKey::generate().sign(&app.claims(&alice.id)));
    expect_code(
        accounts.get_me(get_me(Some(&unlisted))).await,
        Code::Unauthenticated,
        "TOKEN_INVALID",
        "an unknown key",
    );
}

async fn a_disabled_users_tokens_stop_working_within_a_second(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let alice = app.register("alice").await;
    let mut accounts = app.accounts();
    // Used once, so the token is verified and cached before the account is disabled.
    accounts.get_me(authed(GetMeRequest {}, &alice.token)).await.expect("alice's token works");

    let disable = UpdateUserRequest {
        user: Some(User { id: alice.id.clone(), disabled: true, ..User::default() }),
        update_mask: Some(FieldMask { paths: vec!["disabled".into()] }),
    };
    let disabled = accounts.update_user(authed(disable, &admin.token)).await.expect("disable alice").into_inner();
    assert!(disabled.disabled);
    // Deliberate: the subject is that a verified token is trusted for at most a second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    expect_code(
        accounts.get_me(authed(GetMeRequest {}, &alice.token)).await,
        Code::Unauthenticated,
        "USER_DISABLED",
        "the token alice had before she was disabled",
    );
    expect_code(
        accounts.get_me(authed(GetMeRequest {}, &app.sign(&app.claims(&alice.id)))).await,
        Code::Unauthenticated,
        "USER_DISABLED",
        "a token issued for alice after she was disabled",
    );
    // Not only GetMe: the refusal is in the auth layer, before any handler.
    expect_code(
        app.worlds().list_worlds(authed(Default::default(), &alice.token)).await,
        Code::Unauthenticated,
        "USER_DISABLED",
        "an OPTIONAL method with a disabled user's token",
    );
}
