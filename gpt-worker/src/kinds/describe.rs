//! DescribeWorld and DescribeStory: the model writes a description, proposed as the
//! world's description or the story's summary ([`propose`]) against the etag the job
//! read. A human edit made meanwhile wins: the change is stale, so with AUTO the text
//! is kept in the result and the proposal, not applied, and the job says so.

use fabula_contracts::pb::{
    jobs::{DescribeStory, DescribeWorld, DescriptionResult, job_result::Kind},
    story::{Change, GetStoryRequest, GetWorldRequest, Proposal, ResourceKind, SetField, change},
};

use super::{
    Done, JobContext, KindError, Step, ask,
    context::{self, CONTENT_BUDGET},
    propose,
};
use crate::{
    llm::{ChatMessage, ChatRequest, ChatRole, Purpose},
    outputs::{parse_description, parse_summary},
};

pub async fn world(ctx: &JobContext<'_>, spec: &DescribeWorld) -> Result<Done, KindError> {
    ctx.recorder.progress(5, "reading the world");
    let world =
        ctx.story.worlds().get_world(ctx.as_owner(GetWorldRequest { id: spec.world_id.clone() })).await?.into_inner();
    let facts = context::world_facts(ctx, &world.id).await?;
    let instruction =
        "Write a vivid description of this world in two or three paragraphs, consistent with what is known of it.";
    let text = write(ctx, Purpose::DescribeWorld, instruction.into(), context::describe(&world, &facts, None)).await?;
    ctx.recorder.progress(90, "proposing the description");
    let change = set(ResourceKind::World, &world.id, "description", &text, &world.etag);
    let title = format!("A description of \"{}\"", world.name);
    let proposal = propose::conclude(ctx, &world.id, title, vec![change]).await?;
    Ok(finish(ctx, text, proposal))
}

pub async fn story(ctx: &JobContext<'_>, spec: &DescribeStory) -> Result<Done, KindError> {
    ctx.recorder.progress(5, "reading the story");
    let story =
        ctx.story.stories().get_story(ctx.as_owner(GetStoryRequest { id: spec.story_id.clone() })).await?.into_inner();
    let world =
        ctx.story.worlds().get_world(ctx.as_owner(GetWorldRequest { id: story.world_id.clone() })).await?.into_inner();
    let facts = context::world_facts(ctx, &world.id).await?;
    let instruction = format!(
        "Write a short summary (one paragraph) of the story \"{}\" for its table of contents.\n\n\
         What is known of its world:\n{}",
        story.title,
        context::describe(&world, &facts, Some(&story))
    );
    let text = write(ctx, Purpose::DescribeStory, instruction, context::clip(&story.content, CONTENT_BUDGET)).await?;
    ctx.recorder.progress(90, "proposing the summary");
    let change = set(ResourceKind::Story, &story.id, "summary", &text, &story.etag);
    let title = format!("A summary of \"{}\"", story.title);
    let proposal = propose::conclude(ctx, &world.id, title, vec![change]).await?;
    Ok(finish(ctx, text, proposal))
}

/// The change setting `field` of resource `id` to `text`, against its `etag` as read.
fn set(kind: ResourceKind, id: &str, field: &str, text: &str, etag: &str) -> Change {
    Change {
        kind: Some(change::Kind::SetField(SetField {
            resource_kind: kind.into(),
            resource_id: id.into(),
            field: field.into(),
            proposed_value: text.into(),
            ..SetField::default()
        })),
        etag: etag.into(),
        reason: "written by the co-writer".into(),
        ..Change::default()
    }
}

/// Streams the model's text, following `instruction`, about `source` (the only user
/// message, as the prompt convention of [`crate::llm`] asks), and returns it validated.
async fn write(
    ctx: &JobContext<'_>,
    purpose: Purpose,
    instruction: String,
    source: String,
) -> Result<String, KindError> {
    ctx.recorder.writing(20, 90, "writing");
    let parse = if purpose == Purpose::DescribeStory { parse_summary } else { parse_description };
    let request = ChatRequest {
        purpose,
        messages: vec![
            ChatMessage {
                role: ChatRole::System,
                content: "You are a co-writer for a fiction author. Write in plain prose.".into(),
            },
            ChatMessage { role: ChatRole::System, content: instruction },
            ChatMessage { role: ChatRole::User, content: source },
        ],
        json: false,
        max_tokens: 800,
        temperature: 0.7,
    };
    ask(ctx, Step::Saved("describe"), request, parse).await
}

fn finish(ctx: &JobContext<'_>, text: String, proposal: Option<Proposal>) -> Done {
    let applied = propose::applied(proposal.as_ref()).next().is_some();
    let message = match ctx.apply {
        fabula_contracts::pb::jobs::Apply::Auto if applied => "description applied",
        fabula_contracts::pb::jobs::Apply::Auto => "not applied: it was edited meanwhile, and that edit wins",
        _ => "description proposed for review",
    };
    ctx.recorder.progress(100, message);
    Done::new(Kind::Description(DescriptionResult { text, applied }), proposal.as_ref())
}
