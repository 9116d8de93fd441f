//! ListJobs: the caller's jobs, newest first, filtered by state and kind, in pages.

use crate::common;

use common::{Backend, authed, both_databases, expect_invalid, paraphrase, spawn_stack};
use fabula_contracts::pb::jobs::{DescribeWorld, JobState, ListJobsRequest, job_spec::Kind};
use uuid::Uuid;

both_databases!(jobs_are_listed_newest_first_filtered_and_paged);

async fn jobs_are_listed_newest_first_filtered_and_paged(backend: Backend) {
    let stack = spawn_stack(backend).await;
    let user = stack.register_with_model_access("ana").await;
    let first = stack.run_job(&user, paraphrase("First.")).await;
    let missing_world = Kind::DescribeWorld(DescribeWorld { world_id: Uuid::now_v7().to_string() });
    let failed = stack.run_job(&user, missing_world).await;
    let third = stack.run_job(&user, paraphrase("Third.")).await;
    assert_eq!(failed.state(), JobState::Failed, "a world that does not exist: {failed:?}");
    let mut jobs = stack.jobs();
    let list = |filter: &str, page_size: i32, page_token: &str| {
        let request = ListJobsRequest { page_size, page_token: page_token.into(), filter: filter.into() };
        authed(request, &user.token)
    };

    let cases = [
        ("", vec![&third.id, &failed.id, &first.id]),
        (r#"kind = "paraphrase""#, vec![&third.id, &first.id]),
        (r#"state = "FAILED""#, vec![&failed.id]),
        (r#"state = "SUCCEEDED" AND kind = "describe_world""#, vec![]),
    ];
    for (filter, expected) in cases {
        let listed = jobs.list_jobs(list(filter, 0, "")).await.expect("list").into_inner();
        let ids: Vec<&String> = listed.jobs.iter().map(|j| &j.id).collect();
        assert_eq!(ids, expected, "filter {filter:?}");
        assert_eq!(listed.total_size as usize, expected.len(), "total of {filter:?}");
    }

    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = jobs.list_jobs(list("", 2, &token)).await.expect("a page").into_inner();
        assert!(page.jobs.len() <= 2, "a page holds at most page_size jobs");
        paged.extend(page.jobs.into_iter().map(|j| j.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, [third.id.clone(), failed.id.clone(), first.id.clone()], "pages add up to the list");

    let bad = jobs.list_jobs(list(r#"colour = "blue""#, 0, "")).await;
    expect_invalid(bad, "filter", "an unknown filter field");
    let bad = jobs.list_jobs(list("", 0, "not a token")).await;
    expect_invalid(bad, "page_token", "a page token this service did not make");
}
