//! The error model through the gateway: real service errors mapped to HTTP, the
//! bad-input table, and auth at the edge — each case with its reason.

use crate::common;

use common::{Backend, both_databases, reason, spawn};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_databases!(
    service_errors_map_to_http_with_the_google_error_shape,
    bad_input_is_refused_at_the_edge,
    auth_is_checked_at_the_edge,
    the_bearer_scheme_is_read_in_any_case_over_rest_and_grpc,
    a_deadline_that_passes_is_504_deadline_exceeded,
    a_body_says_each_field_once_and_never_null,
    a_required_body_that_is_missing_is_refused_naming_it,
    errors_name_fields_as_rest_clients_do,
    a_long_value_gets_a_short_answer,
    a_url_over_hypers_limit_is_414_not_a_broken_connection,
);

/// A call refused with HTTP `status`, the gRPC status `name` and the `ErrorInfo.reason`
/// `want`; `why` says what is sent.
struct Refusal<'a> {
    why: &'static str,
    method: Method,
    path: String,
    token: Option<&'a str>,
    body: Option<Value>,
    status: StatusCode,
    name: &'static str,
    want: &'static str,
}

async fn service_errors_map_to_http_with_the_google_error_shape(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let bob = stack.rest.register("bob").await;
    let world = stack.create_world(&ada, "Earthsea").await["id"].as_str().unwrap().to_owned();
    let unknown = "0190f1f0-0000-7000-8000-000000000000";
    let register_ada = json!({"username": "ada", "email": "other@example.test", "password": common::PASSWORD});
    let cases = vec![
        Refusal {
            why: "a bad id in the path",
            method: Method::GET,
            path: "/v1/worlds/not-an-id".into(),
            token: None,
            body: None,
            status: StatusCode::BAD_REQUEST,
            name: "INVALID_ARGUMENT",
            want: "INVALID_ARGUMENT",
        },
        Refusal {
            why: "an unknown world",
            method: Method::GET,
            path: format!("/v1/worlds/{unknown}"),
            token: Some(&ada.token),
            body: None,
            status: StatusCode::NOT_FOUND,
            name: "NOT_FOUND",
            want: "NOT_FOUND",
        },
        Refusal {
            why: "a name taken",
            method: Method::POST,
            path: "/v1/auth/register".into(),
            token: None,
            body: Some(register_ada),
            status: StatusCode::CONFLICT,
            name: "ALREADY_EXISTS",
            want: "USERNAME_TAKEN",
        },
        Refusal {
            why: "a share of someone else's world",
            method: Method::GET,
            path: format!("/v1/worlds/{world}/shares"),
            token: Some(&bob.token),
            body: None,
            status: StatusCode::NOT_FOUND,
            name: "NOT_FOUND",
            want: "NOT_FOUND",
        },
        Refusal {
            why: "a wrong password",
            method: Method::POST,
            path: "/v1/auth/login".into(),
            token: None,
            body: Some(json!({"login": "ada", "password": "wrong password!"})),
            status: StatusCode::UNAUTHORIZED,
            name: "UNAUTHENTICATED",
            want: "INVALID_CREDENTIALS",
        },
        Refusal {
            why: "model access not granted",
            method: Method::POST,
            path: "/v1/jobs".into(),
            token: Some(&ada.token),
            body: Some(json!({"paraphrase": {"text": "x"}})),
            status: StatusCode::FORBIDDEN,
            name: "PERMISSION_DENIED",
            want: "MODEL_ACCESS_REQUIRED",
        },
    ];
    for Refusal { why, method, path, token, body, status, name, want } in cases {
        let answer = stack.call(method, &path, token, body).await;
        answer.expect_error(status, name, want, why);
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(answer.headers["www-authenticate"], "Bearer", "{why}");
        }
    }
    let bad = stack.call(Method::GET, "/v1/worlds/not-an-id", None, None).await;
    let violation = bad.body["error"]["details"].as_array().unwrap().iter().find(|d| d["fieldViolations"].is_array());
    assert_eq!(violation.unwrap()["fieldViolations"][0]["field"], "id", "BadRequest as JSON: {:?}", bad.body);
}

/// A request with a body the gateway cannot take, answered with `status` and a message
/// holding `words`; `why` says what is wrong with it.
struct BadBody {
    why: &'static str,
    method: Method,
    url: String,
    content_type: &'static str,
    body: String,
    status: StatusCode,
    words: &'static str,
}

async fn bad_input_is_refused_at_the_edge(backend: Backend) {
    let stack = spawn_with_small_limits(backend).await;
    let ada = stack.rest.register("ada").await;
    let world = stack.create_world(&ada, "Earthsea").await["id"].as_str().unwrap().to_owned();
    let stories = format!("{}/v1/worlds/{world}/stories", stack.base);
    let worlds = format!("{}/v1/worlds", stack.base);
    let big = "x".repeat(1500);
    let cases = vec![
        BadBody {
            why: "malformed JSON says where",
            method: Method::POST,
            url: worlds.clone(),
            content_type: "application/json",
            body: "{\"name\": ".into(),
            status: StatusCode::BAD_REQUEST,
            words: "line 1 column",
        },
        BadBody {
            why: "an unknown field is named",
            method: Method::POST,
            url: worlds.clone(),
            content_type: "application/json",
            body: r#"{"name": "W", "colour": 1}"#.into(),
            status: StatusCode::BAD_REQUEST,
            words: "colour",
        },
        BadBody {
            why: "a wrong type names the field",
            method: Method::POST,
            url: worlds.clone(),
            content_type: "application/json",
            body: r#"{"name": 5}"#.into(),
            status: StatusCode::BAD_REQUEST,
            words: "name",
        },
        BadBody {
            why: "an unknown enum name",
            method: Method::POST,
            url: worlds.clone(),
            content_type: "application/json",
            body: r#"{"name": "W", "worldType": "SPACE"}"#.into(),
            status: StatusCode::BAD_REQUEST,
            words: "worldType",
        },
        BadBody {
            why: "not JSON",
            method: Method::POST,
            url: worlds.clone(),
            content_type: "text/plain",
            body: "name=W".into(),
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            words: "application/json",
        },
        BadBody {
            why: "a body over the limit",
            method: Method::POST,
            url: worlds.clone(),
            content_type: "application/json",
            body: format!(r#"{{"name": "{big}"}}"#),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            words: "limit",
        },
        BadBody {
            why: "a story may be larger",
            method: Method::POST,
            url: stories.clone(),
            content_type: "application/json",
            body: format!(r#"{{"title": "T", "content": "{big}"}}"#),
            status: StatusCode::CREATED,
            words: "",
        },
        BadBody {
            why: "a story over its limit",
            method: Method::POST,
            url: stories.clone(),
            content_type: "application/json",
            body: format!(r#"{{"title": "T", "content": "{big}{big}"}}"#),
            status: StatusCode::PAYLOAD_TOO_LARGE,
            words: "limit",
        },
        BadBody {
            why: "an unknown query parameter",
            method: Method::GET,
            url: format!("{worlds}?colour=red"),
            content_type: "",
            body: String::new(),
            status: StatusCode::BAD_REQUEST,
            words: "colour",
        },
        BadBody {
            why: "a query parameter of the wrong type",
            method: Method::GET,
            url: format!("{worlds}?pageSize=many"),
            content_type: "",
            body: String::new(),
            status: StatusCode::BAD_REQUEST,
            words: "pageSize",
        },
        BadBody {
            why: "a field the body owns, in the query",
            method: Method::POST,
            url: format!("{stories}?story.title=x"),
            content_type: "application/json",
            body: r#"{"title": "T"}"#.into(),
            status: StatusCode::BAD_REQUEST,
            words: "story.title",
        },
        BadBody {
            why: "the path and the body disagree",
            method: Method::PATCH,
            url: format!("{worlds}/{world}"),
            content_type: "application/json",
            body: r#"{"id": "other"}"#.into(),
            status: StatusCode::BAD_REQUEST,
            words: "world.id",
        },
        BadBody {
            why: "a body where none is taken",
            method: Method::GET,
            url: format!("{worlds}/{world}"),
            content_type: "application/json",
            body: "{}".into(),
            status: StatusCode::BAD_REQUEST,
            words: "no body",
        },
        BadBody {
            why: "a wrong method",
            method: Method::PUT,
            url: worlds.clone(),
            content_type: "",
            body: String::new(),
            status: StatusCode::METHOD_NOT_ALLOWED,
            words: "",
        },
        BadBody {
            why: "no such route",
            method: Method::GET,
            url: format!("{}/v1/nothing", stack.base),
            content_type: "",
            body: String::new(),
            status: StatusCode::NOT_FOUND,
            words: "",
        },
        BadBody {
            why: "a bad Grpc-Timeout",
            method: Method::GET,
            url: format!("{worlds}/{world}"),
            content_type: "grpc-timeout",
            body: String::new(),
            status: StatusCode::BAD_REQUEST,
            words: "Grpc-Timeout",
        },
    ];
    for BadBody { why, method, url, content_type, body, status, words } in cases {
        let mut request = stack.http.request(method, &url).bearer_auth(&ada.token);
        match content_type {
            "" => {}
            "grpc-timeout" => request = request.header("grpc-timeout", "soon"),
            _ => request = request.header("content-type", content_type).body(body),
        }
        let answer = common::Answer::read(request.send().await.unwrap()).await;
        assert_eq!(answer.status, status, "{why}: {:?}", answer.body);
        if !status.is_success() {
            assert_eq!(answer.body["error"]["code"], status.as_u16(), "{why}: the error shape: {:?}", answer.body);
            let message = answer.body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(words), "{why}: {message:?} does not say {words:?}");
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(answer.headers["allow"], "GET, HEAD, POST", "{why}");
        }
    }
}

/// A well-formed token for `user` signed by a key nobody trusts.
fn forged_token(user: &str) -> String {
    use fabula_runtime::token::{ACCESS, AUDIENCE, Claims, ISSUER, SigningKey, unix_now};
    let now = unix_now();
    let claims = Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: user.into(),
        iat: now as f64,
        nbf: now,
        exp: now + 600,
        typ: ACCESS.into(),
        role: "USER".into(),
        jti: "forged".into(),
        job: None,
    };
    SigningKey::generate().sign(&claims)
}

async fn spawn_with_small_limits(backend: Backend) -> common::Stack {
    common::spawn_with(backend, |settings| {
        settings.body_limit = 1024;
        settings.story_body_limit = 2048;
    })
    .await
}

/// A call refused by the gateway's auth layer with `status` and the `ErrorInfo.reason`
/// `want` (none when it is let through); `why` says what is sent.
struct Refused<'a> {
    why: &'static str,
    path: &'static str,
    token: Option<&'a str>,
    status: StatusCode,
    want: &'static str,
}

async fn auth_is_checked_at_the_edge(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let forged = forged_token(&ada.id);
    // (why, path, token, status, reason)
    let cases = vec![
        Refused {
            why: "no token on a USER route",
            path: "/v1/users/me",
            token: None,
            status: StatusCode::UNAUTHORIZED,
            want: "TOKEN_MISSING",
        },
        Refused {
            why: "a bad signature",
            path: "/v1/users/me",
            token: Some(&forged),
            status: StatusCode::UNAUTHORIZED,
            want: "TOKEN_INVALID",
        },
        Refused {
            why: "garbage",
            path: "/v1/users/me",
            token: Some("garbage"),
            status: StatusCode::UNAUTHORIZED,
            want: "TOKEN_MALFORMED",
        },
        Refused {
            why: "a bad token on an OPTIONAL route",
            path: "/v1/worlds",
            token: Some("garbage"),
            status: StatusCode::UNAUTHORIZED,
            want: "TOKEN_MALFORMED",
        },
        Refused {
            why: "no token on an OPTIONAL route",
            path: "/v1/worlds",
            token: None,
            status: StatusCode::OK,
            want: "",
        },
        Refused {
            why: "a user on an ADMIN route",
            path: "/v1/admin/users",
            token: Some(&ada.token),
            status: StatusCode::FORBIDDEN,
            want: "ADMIN_ONLY",
        },
    ];
    for Refused { why, path, token, status, want } in cases {
        let answer = stack.call(Method::GET, path, token, None).await;
        assert_eq!(answer.status, status, "{why}: {:?}", answer.body);
        if !want.is_empty() {
            assert_eq!(reason(&answer.body).as_deref(), Some(want), "{why}: {:?}", answer.body);
        }
    }
    let basic = stack.http.get(format!("{}/v1/users/me", stack.base)).header("authorization", "Basic abc").send().await;
    assert_eq!(basic.unwrap().status(), StatusCode::UNAUTHORIZED, "not a bearer token");
}

/// One spelling of the `Authorization` header and whether it is read as a bearer token.
struct SchemeCase {
    why: &'static str,
    /// The header, `{token}` standing for the user's access token.
    header: &'static str,
    accepted: bool,
}

const SCHEME_CASES: [SchemeCase; 7] = [
    SchemeCase { why: "the usual spelling", header: "Bearer {token}", accepted: true },
    SchemeCase { why: "upper case", header: "BEARER {token}", accepted: true },
    SchemeCase { why: "lower case", header: "bearer {token}", accepted: true },
    SchemeCase { why: "mixed case", header: "BeArEr {token}", accepted: true },
    SchemeCase { why: "several spaces (1*SP)", header: "Bearer   {token}", accepted: true },
    SchemeCase { why: "a tab is no SP", header: "Bearer\t{token}", accepted: false },
    SchemeCase { why: "another scheme", header: "Basic {token}", accepted: false },
];

async fn the_bearer_scheme_is_read_in_any_case_over_rest_and_grpc(backend: Backend) {
    use fabula_contracts::pb::accounts::{GetMeRequest, account_service_client::AccountServiceClient};

    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", stack.story_addr)).unwrap();
    let mut accounts = AccountServiceClient::new(channel.connect().await.expect("story-service answers"));
    for case in SCHEME_CASES {
        let header = case.header.replace("{token}", &ada.token);
        let rest = stack.http.get(format!("{}/v1/users/me", stack.base)).header("authorization", &header);
        let rest = common::Answer::read(rest.send().await.unwrap()).await;
        let mut grpc = tonic::Request::new(GetMeRequest::default());
        grpc.metadata_mut().insert("authorization", header.parse().unwrap());
        let grpc = accounts.get_me(grpc).await;
        if case.accepted {
            assert_eq!(rest.status, StatusCode::OK, "{}, REST: {:?}", case.why, rest.body);
            assert_eq!(rest.body["id"], ada.id.as_str(), "{}, REST", case.why);
            assert_eq!(grpc.map(|me| me.into_inner().id).ok(), Some(ada.id.clone()), "{}, gRPC", case.why);
        } else {
            assert_eq!(reason(&rest.body).as_deref(), Some("TOKEN_MALFORMED"), "{}, REST: {:?}", case.why, rest.body);
            let status = grpc.expect_err("refused");
            assert_eq!(fabula_testkit::reason(&status).as_deref(), Some("TOKEN_MALFORMED"), "{}, gRPC", case.why);
        }
    }
}

/// A call whose deadline passes before the service answers.
struct DeadlineCase {
    why: &'static str,
    path: &'static str,
    grpc_timeout: &'static str,
}

async fn a_deadline_that_passes_is_504_deadline_exceeded(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let cases = [
        DeadlineCase { why: "a microsecond, to story-service", path: "/v1/worlds", grpc_timeout: "1u" },
        DeadlineCase { why: "a nanosecond, to story-service", path: "/v1/users/me", grpc_timeout: "1n" },
        DeadlineCase { why: "a microsecond, to gpt-worker", path: "/v1/jobs", grpc_timeout: "1u" },
    ];
    for case in cases {
        let request = stack.http.get(format!("{}{}", stack.base, case.path)).bearer_auth(&ada.token);
        let answer =
            common::Answer::read(request.header("grpc-timeout", case.grpc_timeout).send().await.unwrap()).await;
        assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT, "{}: {:?}", case.why, answer.body);
        assert_eq!(answer.body["error"]["status"], "DEADLINE_EXCEEDED", "{}", case.why);
        assert_eq!(reason(&answer.body).as_deref(), Some("DEADLINE_EXCEEDED"), "{}: {:?}", case.why, answer.body);
    }
}

/// A request refused as INVALID_ARGUMENT naming one field, as a REST client names it.
struct FieldCase {
    why: &'static str,
    method: Method,
    path: String,
    /// The JSON body as sent (text, so that it may repeat a key); none when empty.
    body: Option<String>,
    /// The field the `BadRequest` names, and the message starts with.
    field: &'static str,
}

impl FieldCase {
    fn new(why: &'static str, method: Method, path: impl Into<String>) -> Self {
        Self { why, method, path: path.into(), body: None, field: "" }
    }

    fn sending(self, body: impl Into<String>) -> Self {
        Self { body: Some(body.into()), ..self }
    }

    fn names(self, field: &'static str) -> Self {
        Self { field, ..self }
    }
}

/// Sends each case as `token` and checks it is refused naming its field.
async fn expect_field_errors(stack: &common::Stack, token: &str, cases: Vec<FieldCase>) {
    for case in cases {
        let mut request = stack.http.request(case.method, format!("{}{}", stack.base, case.path)).bearer_auth(token);
        if let Some(body) = case.body {
            request = request.header("content-type", "application/json").body(body);
        }
        let answer = common::Answer::read(request.send().await.unwrap()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}: {:?}", case.why, answer.body);
        assert_eq!(reason(&answer.body).as_deref(), Some("INVALID_ARGUMENT"), "{}: {:?}", case.why, answer.body);
        let details = answer.body["error"]["details"].as_array().cloned().unwrap_or_default();
        let violations = details.iter().find_map(|d| d["fieldViolations"].as_array()).cloned().unwrap_or_default();
        let fields: Vec<&str> = violations.iter().filter_map(|v| v["field"].as_str()).collect();
        assert_eq!(fields, [case.field], "{}: {:?}", case.why, answer.body);
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(&format!("{}: ", case.field)), "{}: {message:?}", case.why);
    }
}

async fn a_body_says_each_field_once_and_never_null(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let world = stack.create_world(&ada, "Earthsea").await["id"].as_str().unwrap().to_owned();
    let cases = vec![
        FieldCase::new("a key twice", Method::POST, "/v1/worlds")
            .sending(r#"{"name": "a", "name": "b"}"#)
            .names("world.name"),
        FieldCase::new("a key twice, deeper", Method::POST, "/v1/jobs")
            .sending(r#"{"paraphrase": {"text": "a", "text": "b"}}"#)
            .names("spec.paraphrase.text"),
        FieldCase::new("a key twice in a whole-body request", Method::POST, "/v1/auth/login")
            .sending(r#"{"login": "ada", "password": "x", "password": "y"}"#)
            .names("password"),
        FieldCase::new("a field by its JSON and its proto name", Method::POST, "/v1/worlds")
            .sending(r#"{"name": "W", "worldType": "FANTASY", "world_type": "OTHER"}"#)
            .names("world.worldType"),
        FieldCase::new("a null enum", Method::PATCH, "/v1/users/me").sending(r#"{"role": null}"#).names("user.role"),
        FieldCase::new("a null string", Method::POST, "/v1/worlds").sending(r#"{"name": null}"#).names("world.name"),
        FieldCase::new("a null in a whole-body request", Method::POST, "/v1/auth/login")
            .sending(r#"{"login": null, "password": "x"}"#)
            .names("login"),
        FieldCase::new("a null body field", Method::PATCH, format!("/v1/worlds/{world}"))
            .sending("null")
            .names("world"),
    ];
    expect_field_errors(&stack, &ada.token, cases).await;
}

async fn a_required_body_that_is_missing_is_refused_naming_it(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let world = stack.create_world(&ada, "Earthsea").await["id"].as_str().unwrap().to_owned();
    let cases = vec![
        FieldCase::new("an update of a world", Method::PATCH, format!("/v1/worlds/{world}")).names("world"),
        FieldCase::new("an update of oneself", Method::PATCH, "/v1/users/me").names("user"),
        FieldCase::new("a blank body", Method::PATCH, "/v1/users/me").sending(" \n").names("user"),
        FieldCase::new("a create", Method::POST, format!("/v1/worlds/{world}/stories")).names("story"),
        FieldCase::new("a job", Method::POST, "/v1/jobs").names("spec"),
    ];
    expect_field_errors(&stack, &ada.token, cases).await;
    let kept = stack.call(Method::GET, &format!("/v1/worlds/{world}"), Some(&ada.token), None).await;
    assert_eq!(kept.body["name"], "Earthsea", "nothing changed");
}

async fn errors_name_fields_as_rest_clients_do(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register_with_model_access("ada").await;
    let world = stack.create_world(&ada, "Earthsea").await["id"].as_str().unwrap().to_owned();
    let stories = format!("/v1/worlds/{world}/stories");
    let story = stack.call(Method::POST, &stories, Some(&ada.token), Some(json!({"title": "T"}))).await;
    let story = story.body["id"].as_str().unwrap().to_owned();
    let cases = vec![
        FieldCase::new("a negative page size", Method::GET, "/v1/worlds?pageSize=-1").names("pageSize"),
        FieldCase::new("a page token of nobody", Method::GET, "/v1/worlds?page_token=garbage").names("pageToken"),
        FieldCase::new(
            "a mask, which REST takes from the body",
            Method::PATCH,
            format!("/v1/worlds/{world}?updateMask=name"),
        )
        .sending(r#"{"name": "x"}"#)
        .names("updateMask"),
        FieldCase::new("a link to no entity", Method::PATCH, format!("/v1/stories/{story}"))
            .sending(r#"{"entityIds": ["nope"]}"#)
            .names("story.entityIds[0]"),
        FieldCase::new("a batch of no story", Method::POST, "/v1/jobs")
            .sending(format!(r#"{{"batchAnalyze": {{"worldId": "{world}", "storyIds": []}}}}"#))
            .names("spec.batchAnalyze.storyIds"),
        FieldCase::new("the path and the body disagree", Method::POST, format!("/v1/worlds/{world}/shares"))
            .sending(r#"{"worldId": "other", "user": "bob", "role": "READER"}"#)
            .names("worldId"),
    ];
    expect_field_errors(&stack, &ada.token, cases).await;
}

/// A request that holds a long value, and the status it is answered with.
struct LongCase {
    why: &'static str,
    method: Method,
    /// The path and query.
    target: String,
    body: Option<String>,
}

impl LongCase {
    fn get(why: &'static str, target: String) -> Self {
        Self { why, method: Method::GET, target, body: None }
    }

    fn post(why: &'static str, target: &str, body: String) -> Self {
        Self { why, method: Method::POST, target: target.to_owned(), body: Some(body) }
    }
}

/// The characters of a long value in a URL: under hyper's limit of 65 534 bytes for a
/// request target, beyond which hyper answers 414 before the gateway sees the request.
const LONG_IN_A_URL: usize = 60_000;
/// The characters of a long value in a body, or in a URL over hyper's limit.
const LONG: usize = 100_000;

async fn a_long_value_gets_a_short_answer(backend: Backend) {
    let stack = spawn(backend).await;
    let ada = stack.rest.register("ada").await;
    let (url, body) = ("a".repeat(LONG_IN_A_URL), "a".repeat(LONG));
    let cases = [
        LongCase::get("the id of a world", format!("/v1/worlds/{url}")),
        LongCase::get("a filter", format!("/v1/worlds?filter={url}")),
        LongCase::get("the id of a job", format!("/v1/jobs/{url}")),
        LongCase::get("the name of an unknown query parameter", format!("/v1/worlds?{url}=1")),
        LongCase::get("a query value of the wrong type", format!("/v1/worlds?pageSize={url}")),
        LongCase::post("an enum value", "/v1/worlds", format!(r#"{{"name": "W", "worldType": "{body}"}}"#)),
        LongCase::post("a string for a boolean", "/v1/jobs", format!(r#"{{"extractEvents": {{"force": "{body}"}}}}"#)),
        LongCase::post(
            "a string for a number",
            "/v1/worlds/w/stories",
            format!(r#"{{"title": "T", "order": "{body}"}}"#),
        ),
        LongCase::post("an unknown field", "/v1/worlds", format!(r#"{{"{body}": 1}}"#)),
        LongCase::post("a key given twice", "/v1/worlds", format!(r#"{{"{body}": 1, "{body}": 1}}"#)),
        LongCase::post("a null under a long key", "/v1/auth/login", format!(r#"{{"login": null, "{body}": 1}}"#)),
    ];
    for case in cases {
        let mut request = stack.http.request(case.method, format!("{}{}", stack.base, case.target));
        if let Some(body) = case.body {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request.bearer_auth(&ada.token).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}: {text}", case.why);
        assert!(text.len() < 2048, "{}: {} bytes: {text}", case.why, text.len());
        // A value is shown by its first 64 characters, a field's name by its first 128 bytes.
        assert!(!text.contains(&"a".repeat(128)), "{}: the value is echoed: {text}", case.why);
    }
}

async fn a_url_over_hypers_limit_is_414_not_a_broken_connection(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let stack = spawn(backend).await;
    let long = "a".repeat(LONG);
    let targets = [
        format!("/v1/worlds/{long}"),
        format!("/v1/worlds?filter={long}"),
        format!("/v1/jobs/{long}"),
        format!("/v1/worlds?{long}=1"),
    ];
    for target in targets {
        // Over 64 KiB, no HTTP client builds the URL: write the request by hand.
        let mut stream = tokio::net::TcpStream::connect(stack.gateway_addr).await.unwrap();
        let request = format!("GET {target} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("the gateway reads the request");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("the gateway answers, then closes");
        assert!(answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{}…: {answer}", &target[..20]);
        assert!(answer.len() < 2048, "{}…: {answer}", &target[..20]);
    }
}
