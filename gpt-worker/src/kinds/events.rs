//! ExtractEvents: timeline events from a story, or from every story of a world, in
//! one proposal ([`propose`]). Each story's extraction is cached by a hash of its
//! content: it runs again only when the content changed or `force` is set. A run
//! again never deletes, and never changes what a person made or edited: it proposes
//! the events the story has none of by that title, and changes to events a job made
//! that no person edited since (their revisions tell).

use std::collections::HashSet;

use fabula_contracts::pb::{
    jobs::{Apply, EventsResult, ExtractEvents, extract_events::Target, job_result::Kind},
    story::{
        Change, Event, GetStoryRequest, GetWorldRequest, ListRevisionsRequest, ListStoriesRequest, ResourceKind,
        SetField, Story, StoryView, World, author::Via, change,
    },
};
use fabula_store::{Result as StoreResult, now_micros};
use sha2::{Digest, Sha256};
use sqlx::Row;
use tonic::Code;
use uuid::Uuid;

use super::{
    Done, JobContext, KindError, Step, ask,
    context::{self, CONTENT_BUDGET, WorldFacts},
    propose,
};
use crate::{
    llm::{ChatMessage, ChatRequest, ChatRole, Purpose},
    outputs::{ExtractedEvents, parse_events},
};

pub async fn extract(ctx: &JobContext<'_>, spec: &ExtractEvents) -> Result<Done, KindError> {
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
        return Ok(Done::new(Kind::Events(EventsResult::default()), None));
    };
    let world =
        ctx.story.worlds().get_world(ctx.as_owner(GetWorldRequest { id: first.world_id.clone() })).await?.into_inner();
    let facts = context::world_facts(ctx, &world.id).await?;
    let mut result = EventsResult::default();
    let (mut changes, mut extracted) = (Vec::new(), Vec::new());
    let count = stories.len() as i32;
    for (i, story) in stories.iter().enumerate() {
        let percent = 5 + 90 * i as i32 / count;
        let next = 5 + 90 * (i as i32 + 1) / count;
        let hash = content_hash(&story.content);
        let cached = cached_extraction(ctx, &story.id).await.map_err(KindError::storage)?;
        // An earlier run of this very job extracted it: its proposal holds the story.
        let unchanged = cached.as_ref().is_some_and(|c| c.content_hash == hash && !c.made_by(ctx.job_id));
        if !spec.force && unchanged {
            ctx.recorder.progress(percent, format!("\"{}\" has not changed: keeping its events", story.title));
            result.cached_story_ids.push(story.id.clone());
            continue;
        }
        ctx.recorder.writing(percent, next, format!("extracting events from \"{}\"", story.title));
        changes.extend(extract_story(ctx, &world, &facts, story).await?);
        extracted.push((story.id.clone(), hash));
    }
    let title = match &stories[..] {
        [one] => format!("Events of \"{}\"", one.title),
        many => format!("Events of {} stories", many.len()),
    };
    let proposal = propose::conclude(ctx, &world.id, title, changes).await?;
    for change in propose::applied(proposal.as_ref()) {
        match &change.kind {
            Some(change::Kind::CreateEvent(event)) => result.created_event_ids.push(event.id.clone()),
            Some(change::Kind::SetField(set)) if !result.changed_event_ids.contains(&set.resource_id) => {
                result.changed_event_ids.push(set.resource_id.clone());
            }
            _ => {}
        }
    }
    for (story_id, hash) in extracted {
        remember_extraction(ctx, &story_id, &hash, &result.created_event_ids).await.map_err(KindError::storage)?;
    }
    let done = match &proposal {
        None => "no new events".to_owned(),
        Some(_) if ctx.apply == Apply::Auto => format!("{} events created", result.created_event_ids.len()),
        Some(p) => format!("{} changes proposed for review", p.changes.len()),
    };
    ctx.recorder.progress(100, done);
    Ok(Done::new(Kind::Events(result), proposal.as_ref()))
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

/// The changes the events the model finds in `story` call for: a new event for each
/// whose title the story has no event of, and changes to one a job made that no
/// person edited. An event a person made or edited is left as it is.
async fn extract_story(
    ctx: &JobContext<'_>,
    world: &World,
    facts: &WorldFacts,
    story: &Story,
) -> Result<Vec<Change>, KindError> {
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
    let mut changes = Vec::new();
    let mut titles = HashSet::new();
    for found in &extracted.events {
        if !titles.insert(found.title.to_lowercase()) {
            continue;
        }
        let proposed = Event {
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
        let existing = facts
            .events
            .iter()
            .find(|e| e.story_id.as_deref() == Some(story.id.as_str()) && e.title.eq_ignore_ascii_case(&found.title));
        match existing {
            None => changes.push(proposed_change(change::Kind::CreateEvent(proposed), String::new())),
            Some(event) if made_by_jobs_only(ctx, &event.id).await? => changes.extend(differences(event, &proposed)),
            Some(_) => {}
        }
    }
    Ok(changes)
}

fn proposed_change(kind: change::Kind, etag: String) -> Change {
    Change { kind: Some(kind), etag, reason: "found in the story".into(), ..Change::default() }
}

/// The changes that make `event` (made by a job) say what `proposed` says.
fn differences(event: &Event, proposed: &Event) -> Vec<Change> {
    let fields = [
        ("description", &event.description, &proposed.description),
        ("era", &event.era, &proposed.era),
        ("year", &event.year.to_string(), &proposed.year.to_string()),
        ("story_position", &event.story_position.to_string(), &proposed.story_position.to_string()),
    ];
    fields
        .into_iter()
        .filter(|(_, now, wanted)| now != wanted)
        .map(|(field, _, wanted)| {
            let set = SetField {
                resource_kind: ResourceKind::Event.into(),
                resource_id: event.id.clone(),
                field: field.into(),
                proposed_value: wanted.clone(),
                ..SetField::default()
            };
            proposed_change(change::Kind::SetField(set), event.etag.clone())
        })
        .collect()
}

/// Whether every revision of event `id` was written by a job (and it has some): no
/// person made or edited it, so a job may change it.
async fn made_by_jobs_only(ctx: &JobContext<'_>, id: &str) -> Result<bool, KindError> {
    let mut page_token = String::new();
    let mut any = false;
    loop {
        let request = ListRevisionsRequest { resource_id: id.into(), page_size: 100, page_token };
        let page = match ctx.story.revisions().list_revisions(ctx.as_owner(request)).await {
            Ok(page) => page.into_inner(),
            Err(status) if status.code() == Code::NotFound => return Ok(false),
            Err(status) => return Err(status.into()),
        };
        if page.revisions.iter().any(|r| !matches!(r.author.as_ref().and_then(|a| a.via.as_ref()), Some(Via::JobId(_))))
        {
            return Ok(false);
        }
        any |= !page.revisions.is_empty();
        if page.next_page_token.is_empty() {
            return Ok(any);
        }
        page_token = page.next_page_token;
    }
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

fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// The last extraction of a story: of which content, and which job made it.
struct Extraction {
    content_hash: String,
    job_id: Option<String>,
}

impl Extraction {
    fn made_by(&self, job_id: Uuid) -> bool {
        self.job_id.as_deref() == Some(job_id.to_string().as_str())
    }
}

async fn cached_extraction(ctx: &JobContext<'_>, story_id: &str) -> StoreResult<Option<Extraction>> {
    let row = sqlx::query("SELECT content_hash, job_id FROM extraction_cache WHERE story_id = $1")
        .bind(story_id)
        .fetch_optional(&ctx.db.reader)
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Extraction { content_hash: row.try_get(0)?, job_id: row.try_get(1)? }))
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
