//! ExtractEvents: timeline events from a story, or from every story of a world.
//! Each story's extraction is cached by a hash of its content: it runs again only
//! when the content changed or `force` is set, and then replaces the events the
//! previous extraction made. An extraction the same job made in an earlier run is
//! kept as it is: that run finished the story.

use fabula_contracts::pb::{
    jobs::{EventsResult, ExtractEvents, extract_events::Target, job_result::Kind},
    story::{
        CreateEventRequest, DeleteEventRequest, Event, GetStoryRequest, GetWorldRequest, ListStoriesRequest, Story,
        StoryView, World,
    },
};
use fabula_store::{Result as StoreResult, now_micros};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tonic::Code;
use uuid::Uuid;

use super::{
    JobContext, KindError, Step,
    analyze::request_id,
    ask,
    context::{self, CONTENT_BUDGET, WorldFacts},
};
use crate::{
    llm::{ChatMessage, ChatRequest, ChatRole, Purpose},
    outputs::{ExtractedEvents, parse_events},
};

pub async fn extract(ctx: &JobContext<'_>, spec: &ExtractEvents) -> Result<Kind, KindError> {
    ctx.recorder.progress(2, "reading the stories");
    let stories = match spec.target.as_ref() {
        Some(Target::StoryId(id)) => {
            vec![ctx.story.stories().get_story(ctx.as_owner(GetStoryRequest { id: id.clone() })).await?.into_inner()]
        }
        Some(Target::WorldId(id)) => stories_of(ctx, id).await?,
        None => return Err(KindError::permanent("INVALID_SPEC", "name a story_id or a world_id")),
    };
    let Some(first) = stories.first() else {
        ctx.recorder.progress(100, "the world has no stories");
        return Ok(Kind::Events(EventsResult::default()));
    };
    let world =
        ctx.story.worlds().get_world(ctx.as_owner(GetWorldRequest { id: first.world_id.clone() })).await?.into_inner();
    let facts = context::world_facts(ctx, &world.id).await?;
    let mut result = EventsResult::default();
    let count = stories.len() as i32;
    for (i, story) in stories.iter().enumerate() {
        let percent = 5 + 95 * i as i32 / count;
        let next = 5 + 95 * (i as i32 + 1) / count;
        let hash = content_hash(&story.content);
        let cached = cached_extraction(ctx, &story.id).await.map_err(KindError::storage)?;
        if let Some(done) = cached.as_ref().filter(|c| c.made_by(ctx.job_id)) {
            ctx.recorder.progress(percent, format!("\"{}\" was done by an earlier attempt", story.title));
            result.created_event_ids.extend(done.event_ids.iter().cloned());
            continue;
        }
        if !spec.force && cached.as_ref().is_some_and(|c| c.content_hash == hash) {
            ctx.recorder.progress(percent, format!("\"{}\" has not changed: keeping its events", story.title));
            result.cached_story_ids.push(story.id.clone());
            continue;
        }
        ctx.recorder.writing(percent, next, format!("extracting events from \"{}\"", story.title));
        remove_previous(ctx, cached.map(|c| c.event_ids).unwrap_or_default()).await?;
        let created = extract_story(ctx, &world, &facts, story).await?;
        remember_extraction(ctx, &story.id, &hash, &created).await.map_err(KindError::storage)?;
        result.created_event_ids.extend(created);
    }
    ctx.recorder.progress(100, format!("{} events created", result.created_event_ids.len()));
    Ok(Kind::Events(result))
}

/// Every story of world `world_id` the owner may read, in the world's order.
async fn stories_of(ctx: &JobContext<'_>, world_id: &str) -> Result<Vec<Story>, KindError> {
    let mut stories = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = ListStoriesRequest {
            world_id: world_id.into(),
            page_size: 200,
            page_token,
            view: StoryView::Full.into(),
            ..Default::default()
        };
        let page = ctx.story.stories().list_stories(ctx.as_owner(request)).await?.into_inner();
        stories.extend(page.stories);
        if page.next_page_token.is_empty() {
            return Ok(stories);
        }
        page_token = page.next_page_token;
    }
}

async fn extract_story(
    ctx: &JobContext<'_>,
    world: &World,
    facts: &WorldFacts,
    story: &Story,
) -> Result<Vec<String>, KindError> {
    let request = ChatRequest {
        purpose: Purpose::ExtractEvents,
        messages: vec![
            ChatMessage {
                role: ChatRole::System,
                content: "You build the timeline of a fictional world. List the events of the story in the order they \
                          happen. Reply with JSON only: {\"events\": [{\"title\", \"description\", \"year\" (integer), \
                          \"era\", \"entities\" (names), \"locations\" (names), \"story_position\" (integer)}]}"
                    .into(),
            },
            ChatMessage {
                role: ChatRole::System,
                content: format!("What is known of the world:\n{}", context::describe(world, facts, Some(story))),
            },
            ChatMessage { role: ChatRole::User, content: context::clip(&story.content, CONTENT_BUDGET) },
        ],
        json: true,
        max_tokens: 3_000,
        temperature: 0.2,
    };
    let extracted: ExtractedEvents =
        ask(ctx, Step::Saved(&format!("events:{}", story.id)), request, parse_events).await?;
    let mut created = Vec::with_capacity(extracted.events.len());
    for (index, found) in extracted.events.iter().enumerate() {
        let event = Event {
            story_id: Some(story.id.clone()),
            title: found.title.clone(),
            description: found.description.clone(),
            year: found.year,
            era: found.era.clone(),
            entity_ids: ids_named(&found.entities, facts.entities.iter().map(|e| (&e.id, &e.name))),
            location_ids: ids_named(&found.locations, facts.locations.iter().map(|l| (&l.id, &l.name))),
            story_position: found.story_position,
            ..Default::default()
        };
        let request = CreateEventRequest {
            world_id: story.world_id.clone(),
            event: Some(event),
            request_id: request_id(ctx, "event", &story.id, &format!("{index}\0{}", found.title)),
        };
        created.push(ctx.story.events().create_event(ctx.as_owner(request)).await?.into_inner().id);
    }
    Ok(created)
}

/// The ids of the known items whose names are among `names` (ignoring case).
fn ids_named<'a>(names: &[String], known: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for (id, name) in known {
        if names.iter().any(|n| n.eq_ignore_ascii_case(name)) && !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

/// Deletes what an earlier extraction made; events deleted since are skipped.
async fn remove_previous(ctx: &JobContext<'_>, event_ids: Vec<String>) -> Result<(), KindError> {
    for id in event_ids {
        let request = DeleteEventRequest { id, etag: String::new() };
        match ctx.story.events().delete_event(ctx.as_owner(request)).await {
            Ok(_) => {}
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => return Err(status.into()),
        }
    }
    Ok(())
}

fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// The last extraction of a story: of which content, what it created and which job made it.
struct Extraction {
    content_hash: String,
    event_ids: Vec<String>,
    job_id: Option<String>,
}

impl Extraction {
    fn made_by(&self, job_id: Uuid) -> bool {
        self.job_id.as_deref() == Some(job_id.to_string().as_str())
    }
}

async fn cached_extraction(ctx: &JobContext<'_>, story_id: &str) -> StoreResult<Option<Extraction>> {
    let row = sqlx::query("SELECT content_hash, event_ids, job_id FROM extraction_cache WHERE story_id = $1")
        .bind(story_id)
        .fetch_optional(&ctx.db.reader)
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Extraction {
        content_hash: row.try_get(0)?,
        event_ids: serde_json::from_str(&row.try_get::<String, _>(1)?).unwrap_or_default(),
        job_id: row.try_get(2)?,
    }))
}

async fn remember_extraction(
    ctx: &JobContext<'_>,
    story_id: &str,
    hash: &str,
    event_ids: &[String],
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO extraction_cache (story_id, content_hash, event_ids, update_time, job_id) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (story_id) DO UPDATE SET content_hash = excluded.content_hash, \
         event_ids = excluded.event_ids, update_time = excluded.update_time, job_id = excluded.job_id",
    )
    .bind(story_id)
    .bind(hash)
    .bind(serde_json::to_string(event_ids).unwrap_or_else(|_| "[]".into()))
    .bind(now_micros())
    .bind(ctx.job_id.to_string())
    .execute(&ctx.db.writer)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_known_ids_ignoring_case() {
        let (a, b) = (("1".to_owned(), "Aria".to_owned()), ("2".to_owned(), "Borin".to_owned()));
        let known = [&a, &b].map(|(id, name)| (id, name));
        assert_eq!(ids_named(&["aria".into(), "Nobody".into()], known.into_iter()), vec!["1"]);
    }

    #[test]
    fn the_hash_changes_with_the_content() {
        assert_eq!(content_hash("x"), content_hash("x"));
        assert_ne!(content_hash("x"), content_hash("y"));
    }
}
