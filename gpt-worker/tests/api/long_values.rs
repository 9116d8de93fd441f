//! A value of 100 000 characters in any field a client fills is refused with a short
//! message: an error that quoted it whole outgrew the response headers that carry it,
//! and the client saw RESOURCE_EXHAUSTED ("metadata size exceeds hard limit") instead.
//! Values are quoted shortened, with their length; some are not quoted at all.

use crate::common;

use common::*;
use fabula_contracts::pb::jobs::{
    BatchAnalyze, CancelJobRequest, CreateJobRequest, DeleteJobRequest, DescribeWorld, GetJobRequest, JobSpec,
    ListJobsRequest, Paraphrase, WaitJobRequest, WatchJobRequest, job_spec::Kind,
};
use tonic::{Code, Status};

both_databases!(a_value_of_100_000_characters_is_refused_with_a_short_message);

/// How long a client's value is.
const LENGTH: usize = 100_000;
/// The most bytes an error's message and details may take here: far below the 8 KiB
/// where gRPC's C core starts refusing response metadata.
const SHORT: usize = 2048;
/// How a long value is quoted: its start, then its length.
const QUOTED: &str = "… (100000 characters)";

/// One call with a long value, and how it is refused: always INVALID_ARGUMENT.
struct Case {
    what: &'static str,
    answer: Result<(), Status>,
    /// The field its `BadRequest` names.
    field: &'static str,
    /// Words the message holds: the value's shortened quote with its length, or what
    /// is said instead when the value is not quoted (a length over the declared one).
    says: &'static str,
}

async fn a_value_of_100_000_characters_is_refused_with_a_short_message(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let ada = stack.register_with_model_access("ada").await;
    let long = "x".repeat(LENGTH);
    let token = ada.token.as_str();
    let create = |kind: Kind, request_id: &str| CreateJobRequest {
        spec: Some(JobSpec { kind: Some(kind), ..JobSpec::default() }),
        request_id: request_id.to_owned(),
    };
    let paraphrase = |text: &str, mode: &str| Kind::Paraphrase(Paraphrase { text: text.into(), mode: mode.into() });
    let cases = [
        Case {
            what: "a job id to get",
            answer: stack.jobs().get_job(authed(GetJobRequest { id: long.clone() }, token)).await.map(drop),
            field: "id",
            says: QUOTED,
        },
        Case {
            what: "a job id to watch",
            answer: {
                let request = WatchJobRequest { id: long.clone(), after_seq: 0 };
                stack.jobs().watch_job(authed(request, token)).await.map(drop)
            },
            field: "id",
            says: QUOTED,
        },
        Case {
            what: "a job id to wait for",
            answer: {
                let request = WaitJobRequest { id: long.clone(), timeout: None };
                stack.jobs().wait_job(authed(request, token)).await.map(drop)
            },
            field: "id",
            says: QUOTED,
        },
        Case {
            what: "a job id to cancel",
            answer: stack.jobs().cancel_job(authed(CancelJobRequest { id: long.clone() }, token)).await.map(drop),
            field: "id",
            says: QUOTED,
        },
        Case {
            what: "a job id to delete",
            answer: stack.jobs().delete_job(authed(DeleteJobRequest { id: long.clone() }, token)).await.map(drop),
            field: "id",
            says: QUOTED,
        },
        Case {
            what: "a filter that is no term",
            answer: {
                let request = ListJobsRequest { filter: long.clone(), ..Default::default() };
                stack.jobs().list_jobs(authed(request, token)).await.map(drop)
            },
            field: "filter",
            says: "at most 1000 characters, not",
        },
        Case {
            what: "a filter value that is no state",
            answer: {
                let request = ListJobsRequest { filter: format!("state = {long}"), ..Default::default() };
                stack.jobs().list_jobs(authed(request, token)).await.map(drop)
            },
            field: "filter",
            says: "at most 1000 characters, not",
        },
        Case {
            what: "a page token",
            answer: {
                let request = ListJobsRequest { page_token: long.clone(), ..Default::default() };
                stack.jobs().list_jobs(authed(request, token)).await.map(drop)
            },
            field: "page_token",
            says: "at most 2048 characters, not 100000",
        },
        Case {
            what: "a world id in a job's spec",
            answer: {
                let kind = Kind::DescribeWorld(DescribeWorld { world_id: long.clone() });
                stack.jobs().create_job(authed(create(kind, ""), token)).await.map(drop)
            },
            field: "spec.describe_world.world_id",
            says: QUOTED,
        },
        Case {
            what: "story ids in a batch",
            answer: {
                let story_ids = vec![long.clone(), format!("{long}y")];
                let kind = Kind::BatchAnalyze(BatchAnalyze { world_id: long.clone(), story_ids });
                stack.jobs().create_job(authed(create(kind, ""), token)).await.map(drop)
            },
            field: "spec.batch_analyze",
            says: QUOTED,
        },
        Case {
            what: "a text to paraphrase",
            answer: stack.jobs().create_job(authed(create(paraphrase(&long, ""), ""), token)).await.map(drop),
            field: "spec.paraphrase.text",
            says: "not 100000",
        },
        Case {
            what: "a paraphrase mode",
            answer: stack.jobs().create_job(authed(create(paraphrase("Hello.", &long), ""), token)).await.map(drop),
            field: "spec.paraphrase.mode",
            says: "at most 50 characters",
        },
        Case {
            what: "a request id",
            answer: stack.jobs().create_job(authed(create(paraphrase("Hello.", ""), &long), token)).await.map(drop),
            field: "request_id",
            says: "at most 100 characters",
        },
    ];
    for case in cases {
        let status = expect_code(case.answer, Code::InvalidArgument, "INVALID_ARGUMENT", case.what);
        expect_short_answer(&status, SHORT, case.says, case.what);
        expect_field_within(&status, case.field, case.what);
    }
}
