//! Accounts through the gateway: register, sign in by username and by email, the
//! profile, refresh-token rotation and reuse, logout, a password change, and the
//! errors a user meets on the way.

use std::time::{Duration, Instant};

use fabula_testkit::{Backend, PASSWORD, both_databases};
use reqwest::StatusCode;
use serde_json::json;

use crate::stack;

both_databases!(
    a_user_signs_up_signs_in_refreshes_and_signs_out,
    account_errors_say_what_went_wrong,
    a_disabled_users_token_fails_everywhere_within_a_second,
);

async fn a_user_signs_up_signs_in_refreshes_and_signs_out(backend: Backend) {
    let running = stack::start(backend).await;
    let api = running.rest();

    let ada = api.register("ada").await;
    let me = ada.api.get("/v1/users/me").await.expect(StatusCode::OK, "me");
    assert_eq!((&me["id"], &me["username"], &me["email"]), (&json!(ada.id), &json!("ada"), &json!("ada@example.test")));
    assert_eq!(me["role"], "USER", "{me}");
    assert_ne!(me["gptEnabled"], true, "a new user has no model access: {me}");
    assert_eq!(api.login("ada", PASSWORD).await.id, ada.id, "signed in by username");
    let by_email = api.login("ada@example.test", PASSWORD).await;
    assert_eq!(by_email.id, ada.id, "signed in by email");

    // A refresh token works once; presenting it again revokes its whole family.
    let first = json!({"refreshToken": by_email.refresh_token});
    let rotated = api.post("/v1/auth/refresh", first.clone()).await.expect(StatusCode::OK, "refresh");
    let next = rotated["refreshToken"].as_str().expect("a new refresh token").to_owned();
    assert_ne!(next, by_email.refresh_token, "the refresh token rotates");
    let fresh = api.with_token(rotated["accessToken"].as_str().expect("a new access token"));
    assert_eq!(fresh.get("/v1/users/me").await.expect(StatusCode::OK, "the new access token")["id"], ada.id);
    let reused = api.post("/v1/auth/refresh", first).await;
    reused.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "REFRESH_TOKEN_REUSED", "a used refresh token");
    let family = api.post("/v1/auth/refresh", json!({"refreshToken": next})).await;
    assert_eq!(family.status, StatusCode::UNAUTHORIZED, "the reuse revoked the family: {}", family.body);

    // Logout ends a session: its refresh token is refused, other sessions live on.
    let session = api.login("ada", PASSWORD).await;
    let logout = json!({"refreshToken": session.refresh_token});
    api.post("/v1/auth/logout", logout.clone()).await.expect(StatusCode::OK, "logout");
    let after = api.post("/v1/auth/refresh", logout).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "a logged-out refresh token: {}", after.body);
    let other = json!({"refreshToken": ada.refresh_token});
    assert_eq!(api.post("/v1/auth/refresh", other).await.status, StatusCode::OK, "the first session lives on");

    // A new password: the old one no longer signs in, and every session ends.
    let session = api.login("ada", PASSWORD).await;
    let change = json!({"currentPassword": PASSWORD, "newPassword": "a brand new passphrase"});
    ada.api.post("/v1/users/me/password", change).await.expect(StatusCode::OK, "change the password");
    let old = api.post("/v1/auth/login", json!({"login": "ada", "password": PASSWORD})).await;
    old.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "INVALID_CREDENTIALS", "the old password");
    assert_eq!(api.login("ada", "a brand new passphrase").await.id, ada.id, "the new password signs in");
    let ended = api.post("/v1/auth/refresh", json!({"refreshToken": session.refresh_token})).await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED, "sessions end with a password change: {}", ended.body);
    // The access tokens from before the change are refused by every service.
    for path in ["/v1/users/me", "/v1/jobs"] {
        let old = ada.api.get(path).await;
        old.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "TOKEN_REVOKED", &format!("{path}, old token"));
    }
    running.stop().await;
}

async fn account_errors_say_what_went_wrong(backend: Backend) {
    let running = stack::start(backend).await;
    let api = running.rest();
    api.register("ada").await;

    let again = json!({"username": "ADA", "email": "someone@example.test", "password": PASSWORD});
    let taken = api.post("/v1/auth/register", again).await;
    taken.expect_error(StatusCode::CONFLICT, "ALREADY_EXISTS", "USERNAME_TAKEN", "a username taken, in any case");
    let again = json!({"username": "ada2", "email": "ada@example.test", "password": PASSWORD});
    let taken = api.post("/v1/auth/register", again).await;
    taken.expect_error(StatusCode::CONFLICT, "ALREADY_EXISTS", "EMAIL_TAKEN", "an email taken");
    let short = api.post("/v1/auth/register", json!({"username": "bo", "email": "bo", "password": "short"})).await;
    short.expect_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "bad fields");
    let fields = short.body["error"]["details"]
        .as_array()
        .and_then(|d| d.iter().find_map(|d| d["fieldViolations"].as_array()))
        .map(|v| v.iter().map(|v| v["field"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>());
    assert_eq!(fields, Some(vec!["email".into(), "password".into(), "username".into()]), "{}", short.body);

    let wrong = api.post("/v1/auth/login", json!({"login": "ada", "password": "not the password"})).await;
    wrong.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "INVALID_CREDENTIALS", "a wrong password");
    let nobody = api.post("/v1/auth/login", json!({"login": "nobody", "password": PASSWORD})).await;
    nobody.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "INVALID_CREDENTIALS", "an unknown user");
    assert_eq!(nobody.body["error"]["message"], wrong.body["error"]["message"], "no hint which was wrong");

    let anonymous = api.get("/v1/users/me").await;
    anonymous.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "TOKEN_MISSING", "no token");
    assert_eq!(anonymous.headers["www-authenticate"], "Bearer", "the challenge");
    let garbage = api.with_token("not.a.token").get("/v1/users/me").await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED, "{}", garbage.body);
    assert_eq!(garbage.headers["www-authenticate"], "Bearer", "the challenge");
    let ada = api.login("ada", PASSWORD).await;
    let admin_only = ada.api.get("/v1/admin/users").await;
    admin_only.expect_error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", "ADMIN_ONLY", "a user on an admin route");
    running.stop().await;
}

/// An administrator disables a user: within a second their still-unexpired access
/// token is refused by story-service and by gpt-worker, both through the gateway
/// (which checks only the signature) and over gRPC straight to gpt-worker.
async fn a_disabled_users_token_fails_everywhere_within_a_second(backend: Backend) {
    use fabula_contracts::pb::jobs::{ListJobsRequest, job_service_client::JobServiceClient};
    use fabula_testkit::authed;

    let running = stack::start(backend).await;
    let api = running.rest();
    let ada = api.register("ada").await;
    api.grant_model_access(&ada).await;
    let mut jobs = JobServiceClient::connect(running.worker_url()).await.expect("connect to gpt-worker");
    ada.api.get("/v1/users/me").await.expect(StatusCode::OK, "story-service, before");
    ada.api.get("/v1/jobs").await.expect(StatusCode::OK, "gpt-worker, before");
    jobs.list_jobs(authed(ListJobsRequest::default(), &ada.token)).await.expect("gpt-worker over gRPC, before");

    let admin = api.admin().await;
    let path = format!("/v1/admin/users/{}", ada.id);
    admin.api.patch(&path, json!({"disabled": true})).await.expect(StatusCode::OK, "disable ada");
    let disabled_at = Instant::now();

    let mut refused = [false; 3];
    while refused.contains(&false) && disabled_at.elapsed() < Duration::from_millis(1_100) {
        refused[0] |= ada.api.get("/v1/users/me").await.status == StatusCode::UNAUTHORIZED;
        refused[1] |= ada.api.get("/v1/jobs").await.status == StatusCode::UNAUTHORIZED;
        let grpc = jobs.list_jobs(authed(ListJobsRequest::default(), &ada.token)).await;
        refused[2] |= grpc.is_err_and(|status| status.code() == tonic::Code::Unauthenticated);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(refused, [true; 3], "refused within a second by: story-service, gpt-worker via the gateway, gpt-worker");
    let me = ada.api.get("/v1/users/me").await;
    me.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "USER_DISABLED", "a disabled user's token");
    running.stop().await;
}
