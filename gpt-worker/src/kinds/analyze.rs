//! AnalyzeStory and BatchAnalyze: the model names a story's characters, other
//! entities and places; the missing ones are created in the world and all of them
//! linked to the story. Every create carries a request id derived from the job and
//! the item's name in the model's answer, which a re-run of the job gets back from
//! [`ask`] unchanged, so a job re-run after a crash creates nothing twice.

use fabula_contracts::pb::{
    jobs::{AnalysesResult, AnalysisResult, AnalyzeStory, BatchAnalyze, job_result::Kind},
    story::{
        CreateEntityRequest, CreateLocationRequest, Entity, GetStoryRequest, GetWorldRequest, Location, Story,
        UpdateStoryRequest,
    },
};
use prost_types::FieldMask;
use sha2::{Digest, Sha256};
use tonic::Code;

use super::{
    JobContext, KindError, Step, ask,
    context::{self, CONTENT_BUDGET},
};
use crate::{
    llm::{ChatMessage, ChatRequest, ChatRole, Purpose},
    outputs::{Analysis, parse_analysis},
};

/// Attempts at linking when the story keeps changing under us.
const LINK_ATTEMPTS: usize = 3;

pub async fn one(ctx: &JobContext<'_>, spec: &AnalyzeStory) -> Result<Kind, KindError> {
    let result = analyze(ctx, &spec.story_id, None, (0, 100)).await?;
    Ok(Kind::Analyses(AnalysesResult { stories: vec![result] }))
}

pub async fn batch(ctx: &JobContext<'_>, spec: &BatchAnalyze) -> Result<Kind, KindError> {
    let count = spec.story_ids.len().max(1) as i32;
    let mut stories = Vec::with_capacity(spec.story_ids.len());
    for (i, story_id) in spec.story_ids.iter().enumerate() {
        let i = i as i32;
        let span = (i * 100 / count, (i + 1) * 100 / count);
        stories.push(analyze(ctx, story_id, Some(&spec.world_id), span).await?);
    }
    Ok(Kind::Analyses(AnalysesResult { stories }))
}

/// Analyses one story, reporting progress from `span.0` to `span.1` percent.
async fn analyze(
    ctx: &JobContext<'_>,
    story_id: &str,
    world_id: Option<&str>,
    span: (i32, i32),
) -> Result<AnalysisResult, KindError> {
    let at = |fraction: i32| span.0 + (span.1 - span.0) * fraction / 100;
    ctx.recorder.progress(at(0), "reading the story");
    let story =
        ctx.story.stories().get_story(ctx.as_owner(GetStoryRequest { id: story_id.into() })).await?.into_inner();
    if world_id.is_some_and(|w| w != story.world_id) {
        return Err(KindError::permanent(
            "INVALID_SPEC",
            format!("story {story_id} is not in world {}", world_id.unwrap_or_default()),
        ));
    }
    let world =
        ctx.story.worlds().get_world(ctx.as_owner(GetWorldRequest { id: story.world_id.clone() })).await?.into_inner();
    let facts = context::world_facts(ctx, &world.id).await?;
    ctx.recorder.writing(at(20), at(70), format!("asking the model about \"{}\"", story.title));
    let request = request(&context::describe(&world, &facts, Some(&story)), &story);
    let analysis = ask(ctx, Step::Saved(&format!("analyze:{}", story.id)), request, parse_analysis).await?;
    ctx.recorder.progress(
        at(70),
        format!("recording {} entities and {} places", analysis.entities.len(), analysis.locations.len()),
    );
    let result = record(ctx, &story, &facts, &analysis).await?;
    ctx.recorder.progress(at(100), format!("\"{}\" analysed", story.title));
    Ok(result)
}

fn request(context: &str, story: &Story) -> ChatRequest {
    ChatRequest {
        purpose: Purpose::AnalyzeStory,
        messages: vec![
            ChatMessage {
                role: ChatRole::System,
                content: "You analyse fiction. List the characters and other named entities (factions, items, creatures) \
                          and the places of the story. Reuse the exact names of known ones. Reply with JSON only: \
                          {\"entities\": [{\"name\", \"entity_type\", \"description\"}], \"locations\": [{\"name\", \"description\"}]}"
                    .into(),
            },
            ChatMessage { role: ChatRole::System, content: format!("What is known of the world:\n{context}") },
            ChatMessage { role: ChatRole::User, content: context::clip(&story.content, CONTENT_BUDGET) },
        ],
        json: true,
        max_tokens: 2_000,
        temperature: 0.2,
    }
}

/// Creates what is missing and links everything found to the story.
async fn record(
    ctx: &JobContext<'_>,
    story: &Story,
    facts: &context::WorldFacts,
    analysis: &Analysis,
) -> Result<AnalysisResult, KindError> {
    let mut result = AnalysisResult { story_id: story.id.clone(), ..Default::default() };
    for found in &analysis.entities {
        match facts.entities.iter().find(|e| e.name.eq_ignore_ascii_case(&found.name)) {
            Some(known) => result.linked_entity_ids.push(known.id.clone()),
            None => {
                let entity = Entity {
                    name: found.name.clone(),
                    entity_type: found.entity_type.clone(),
                    description: found.description.clone(),
                    ..Default::default()
                };
                let request = CreateEntityRequest {
                    world_id: story.world_id.clone(),
                    entity: Some(entity),
                    request_id: request_id(ctx, "entity", &story.id, &found.name),
                };
                let created = ctx.story.entities().create_entity(ctx.as_owner(request)).await?.into_inner();
                result.created_entity_ids.push(created.id.clone());
                result.linked_entity_ids.push(created.id);
            }
        }
    }
    for found in &analysis.locations {
        match facts.locations.iter().find(|l| l.name.eq_ignore_ascii_case(&found.name)) {
            Some(known) => result.linked_location_ids.push(known.id.clone()),
            None => {
                let location =
                    Location { name: found.name.clone(), description: found.description.clone(), ..Default::default() };
                let request = CreateLocationRequest {
                    world_id: story.world_id.clone(),
                    location: Some(location),
                    request_id: request_id(ctx, "location", &story.id, &found.name),
                };
                let created = ctx.story.locations().create_location(ctx.as_owner(request)).await?.into_inner();
                result.created_location_ids.push(created.id.clone());
                result.linked_location_ids.push(created.id);
            }
        }
    }
    link(ctx, story.clone(), &result).await?;
    Ok(result)
}

/// Adds the links to the story, re-reading it when an edit raced ours.
async fn link(ctx: &JobContext<'_>, mut story: Story, result: &AnalysisResult) -> Result<(), KindError> {
    for _ in 0..LINK_ATTEMPTS {
        let entity_ids = union(&story.entity_ids, &result.linked_entity_ids);
        let location_ids = union(&story.location_ids, &result.linked_location_ids);
        if entity_ids == story.entity_ids && location_ids == story.location_ids {
            return Ok(());
        }
        let update = UpdateStoryRequest {
            story: Some(Story {
                id: story.id.clone(),
                entity_ids,
                location_ids,
                etag: story.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths: vec!["entity_ids".into(), "location_ids".into()] }),
        };
        match ctx.story.stories().update_story(ctx.as_owner(update)).await {
            Ok(_) => return Ok(()),
            Err(status) if status.code() == Code::Aborted => {
                story = ctx
                    .story
                    .stories()
                    .get_story(ctx.as_owner(GetStoryRequest { id: story.id.clone() }))
                    .await?
                    .into_inner();
            }
            Err(status) => return Err(status.into()),
        }
    }
    // Busy, not wrong: the job runs again later, and its creates are idempotent.
    Err(KindError::Transient {
        code: "EDIT_CONFLICT",
        message: "the story kept changing while its links were being added".into(),
        retry_after: None,
    })
}

/// `existing` followed by the ids of `added` it lacks.
fn union(existing: &[String], added: &[String]) -> Vec<String> {
    let mut all = existing.to_vec();
    for id in added {
        if !all.contains(id) {
            all.push(id.clone());
        }
    }
    all
}

/// The request id of one create of this job: the same on every attempt.
pub fn request_id(ctx: &JobContext<'_>, kind: &str, scope: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{kind}\0{scope}\0{}", name.to_lowercase()));
    format!("job-{}-{}", ctx.job_id, hex::encode(&digest[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_keeps_order_and_adds_only_new_ids() {
        let existing = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(union(&existing, &["b".into(), "c".into()]), vec!["a", "b", "c"]);
        assert_eq!(union(&existing, &[]), existing);
    }
}
