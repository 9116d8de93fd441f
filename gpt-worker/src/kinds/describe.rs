//! DescribeWorld and DescribeStory: the model writes a description, which is applied
//! with an etag-checked update. A human edit made meanwhile wins: the text is kept in
//! the result, not applied, and the job says so.

use fabula_contracts::pb::{
    jobs::{DescribeStory, DescribeWorld, DescriptionResult, job_result::Kind},
    story::{GetStoryRequest, GetWorldRequest, Story, UpdateStoryRequest, UpdateWorldRequest, World},
};
use prost_types::FieldMask;
use tonic::Code;

use super::{
    JobContext, KindError, Step, ask,
    context::{self, CONTENT_BUDGET},
};
use crate::{
    llm::{ChatMessage, ChatRequest, ChatRole, Purpose},
    outputs::{parse_description, parse_summary},
};

pub async fn world(ctx: &JobContext<'_>, spec: &DescribeWorld) -> Result<Kind, KindError> {
    ctx.recorder.progress(5, "reading the world");
    let world =
        ctx.story.worlds().get_world(ctx.as_owner(GetWorldRequest { id: spec.world_id.clone() })).await?.into_inner();
    let facts = context::world_facts(ctx, &world.id).await?;
    let instruction =
        "Write a vivid description of this world in two or three paragraphs, consistent with what is known of it.";
    let text = write(ctx, Purpose::DescribeWorld, instruction.into(), context::describe(&world, &facts, None)).await?;
    ctx.recorder.progress(90, "applying the description");
    let update = UpdateWorldRequest {
        world: Some(World {
            id: world.id.clone(),
            description: text.clone(),
            etag: world.etag.clone(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["description".into()] }),
    };
    let applied = applied(ctx.story.worlds().update_world(ctx.as_owner(update)).await)?;
    Ok(finish(ctx, text, applied))
}

pub async fn story(ctx: &JobContext<'_>, spec: &DescribeStory) -> Result<Kind, KindError> {
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
    ctx.recorder.progress(90, "applying the summary");
    let update = UpdateStoryRequest {
        story: Some(Story {
            id: story.id.clone(),
            summary: text.clone(),
            etag: story.etag.clone(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["summary".into()] }),
    };
    let applied = applied(ctx.story.stories().update_story(ctx.as_owner(update)).await)?;
    Ok(finish(ctx, text, applied))
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

/// Whether an etag-checked update went through: ABORTED means a human edit won.
fn applied<T>(outcome: Result<T, tonic::Status>) -> Result<bool, KindError> {
    match outcome {
        Ok(_) => Ok(true),
        Err(status) if status.code() == Code::Aborted => Ok(false),
        Err(status) => Err(status.into()),
    }
}

fn finish(ctx: &JobContext<'_>, text: String, applied: bool) -> Kind {
    let message =
        if applied { "description applied" } else { "not applied: it was edited meanwhile, and that edit wins" };
    ctx.recorder.progress(100, message);
    Kind::Description(DescriptionResult { text, applied })
}
