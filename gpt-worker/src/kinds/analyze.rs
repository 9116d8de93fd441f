//! AnalyzeStory and BatchAnalyze: the model names a story's characters, other
//! entities and places; the job proposes the missing ones for the world and links of
//! all of them to the story, in one proposal for the whole job ([`propose`]). A name
//! found in several stories of a batch is proposed once. Nothing a person wrote is
//! changed: known items are only linked.

use std::collections::{HashMap, HashSet};

use fabula_contracts::pb::{
    jobs::{AnalysesResult, AnalysisResult, AnalyzeStory, Apply, BatchAnalyze, job_result::Kind},
    story::{
        Change, Entity, GetStoryRequest, GetWorldRequest, LinkToStory, Location, Proposal, Story, change,
        link_to_story::Item,
    },
};
use uuid::Uuid;

use super::{
    Done, JobContext, KindError, Step, ask,
    context::{self, CONTENT_BUDGET},
    propose,
};
use crate::{
    llm::{ChatMessage, ChatRequest, ChatRole, Purpose},
    outputs::{Analysis, parse_analysis},
};

pub async fn one(ctx: &JobContext<'_>, spec: &AnalyzeStory) -> Result<Done, KindError> {
    let mut plan = Plan::default();
    let story = analyze(ctx, &spec.story_id, None, (0, 100), &mut plan).await?;
    let title = format!("Characters and places of \"{}\"", story.title);
    plan.finish(ctx, &story.world_id, title).await
}

pub async fn batch(ctx: &JobContext<'_>, spec: &BatchAnalyze) -> Result<Done, KindError> {
    let count = spec.story_ids.len().max(1) as i32;
    let mut plan = Plan::default();
    for (i, story_id) in spec.story_ids.iter().enumerate() {
        let i = i as i32;
        let span = (i * 100 / count, (i + 1) * 100 / count);
        analyze(ctx, story_id, Some(&spec.world_id), span, &mut plan).await?;
    }
    let title = format!("Characters and places of {} stories", spec.story_ids.len());
    plan.finish(ctx, &spec.world_id, title).await
}

/// Analyses one story into `plan`, reporting progress from `span.0` to `span.1` percent.
async fn analyze(
    ctx: &JobContext<'_>,
    story_id: &str,
    world_id: Option<&str>,
    span: (i32, i32),
    plan: &mut Plan,
) -> Result<Story, KindError> {
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
    ctx.recorder.writing(at(20), at(90), format!("asking the model about \"{}\"", story.title));
    let request = request(&context::describe(&world, &facts, Some(&story)), &story);
    let analysis = ask(ctx, Step::Saved(&format!("analyze:{}", story.id)), request, parse_analysis).await?;
    plan.add(&story, &facts, &analysis);
    ctx.recorder.progress(at(100), format!("\"{}\" analysed", story.title));
    Ok(story)
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

/// What the analyses of a job propose: the changes, and for each story what was
/// already linked to it.
#[derive(Default)]
struct Plan {
    changes: Vec<Change>,
    /// The ids of what this job proposes to create, by kind and name (lowercase).
    created: HashMap<(bool, String), String>,
    /// Per story, in order: its id and the entity and location ids already linked.
    stories: Vec<(String, Vec<String>, Vec<String>)>,
}

impl Plan {
    /// Proposes what `analysis` found in `story`: the unknown items, and links of
    /// everything found that is not linked yet.
    fn add(&mut self, story: &Story, facts: &context::WorldFacts, analysis: &Analysis) {
        let mut linked = (Vec::new(), Vec::new());
        let mut seen = HashSet::new();
        for found in &analysis.entities {
            let known = facts.entities.iter().find(|e| e.name.eq_ignore_ascii_case(&found.name)).map(|e| e.id.clone());
            let id = known.unwrap_or_else(|| {
                self.create((true, found.name.to_lowercase()), |id| {
                    change::Kind::CreateEntity(Entity {
                        id,
                        name: found.name.clone(),
                        entity_type: found.entity_type.clone(),
                        description: found.description.clone(),
                        ..Entity::default()
                    })
                })
            });
            self.link(story, Item::EntityId(id), &story.entity_ids, &mut linked.0, &mut seen);
        }
        for found in &analysis.locations {
            let known = facts.locations.iter().find(|l| l.name.eq_ignore_ascii_case(&found.name)).map(|l| l.id.clone());
            let id = known.unwrap_or_else(|| {
                self.create((false, found.name.to_lowercase()), |id| {
                    change::Kind::CreateLocation(Location {
                        id,
                        name: found.name.clone(),
                        description: found.description.clone(),
                        ..Location::default()
                    })
                })
            });
            self.link(story, Item::LocationId(id), &story.location_ids, &mut linked.1, &mut seen);
        }
        self.stories.push((story.id.clone(), linked.0, linked.1));
    }

    /// The id of what this job creates under `key`: proposed by `make` the first time.
    fn create(&mut self, key: (bool, String), make: impl FnOnce(String) -> change::Kind) -> String {
        if let Some(id) = self.created.get(&key) {
            return id.clone();
        }
        let id = Uuid::now_v7().to_string();
        self.changes.push(proposed(make(id.clone())));
        self.created.insert(key, id.clone());
        id
    }

    /// Proposes linking `item` to `story`, unless it is linked (`already` holds the
    /// story's links of its kind: it goes to `kept`) or proposed already (`seen`).
    fn link(
        &mut self,
        story: &Story,
        item: Item,
        already: &[String],
        kept: &mut Vec<String>,
        seen: &mut HashSet<String>,
    ) {
        let (Item::EntityId(id) | Item::LocationId(id)) = &item;
        if !seen.insert(id.clone()) {
            return;
        }
        if already.contains(id) {
            kept.push(id.clone());
        } else {
            self.changes
                .push(proposed(change::Kind::Link(LinkToStory { story_id: story.id.clone(), item: Some(item) })));
        }
    }

    /// Ends the job: the proposal, and with AUTO what was applied, per story.
    async fn finish(self, ctx: &JobContext<'_>, world_id: &str, title: String) -> Result<Done, KindError> {
        let proposal = propose::conclude(ctx, world_id, title, self.changes).await?;
        let mut results = Vec::with_capacity(self.stories.len());
        let mut counted = HashSet::new();
        for (story_id, entities, locations) in self.stories {
            let result = match ctx.apply {
                Apply::Auto => applied_to(proposal.as_ref(), story_id, entities, locations, &mut counted),
                _ => AnalysisResult { story_id, ..AnalysisResult::default() },
            };
            results.push(result);
        }
        ctx.recorder.progress(100, if proposal.is_some() { "proposal made" } else { "nothing new to propose" });
        Ok(Done::new(Kind::Analyses(AnalysesResult { stories: results }), proposal.as_ref()))
    }
}

fn proposed(kind: change::Kind) -> Change {
    Change { kind: Some(kind), reason: "named in the story".into(), ..Change::default() }
}

/// What `proposal`, accepted, did for story `story_id`: the links it applied (beside
/// the `entities` and `locations` linked before), and the items it created that were
/// linked to this story first (`counted` holds those of earlier stories).
fn applied_to(
    proposal: Option<&Proposal>,
    story_id: String,
    mut entities: Vec<String>,
    mut locations: Vec<String>,
    counted: &mut HashSet<String>,
) -> AnalysisResult {
    let created: HashSet<&str> = propose::applied(proposal)
        .filter_map(|c| match &c.kind {
            Some(change::Kind::CreateEntity(e)) => Some(e.id.as_str()),
            Some(change::Kind::CreateLocation(l)) => Some(l.id.as_str()),
            _ => None,
        })
        .collect();
    for change in propose::applied(proposal) {
        match &change.kind {
            Some(change::Kind::Link(LinkToStory { story_id: to, item: Some(Item::EntityId(id)) }))
                if *to == story_id =>
            {
                entities.push(id.clone());
            }
            Some(change::Kind::Link(LinkToStory { story_id: to, item: Some(Item::LocationId(id)) }))
                if *to == story_id =>
            {
                locations.push(id.clone());
            }
            _ => {}
        }
    }
    let mut first = |ids: &[String]| -> Vec<String> {
        ids.iter().filter(|id| created.contains(id.as_str()) && counted.insert((*id).clone())).cloned().collect()
    };
    AnalysisResult {
        created_entity_ids: first(&entities),
        created_location_ids: first(&locations),
        linked_entity_ids: entities,
        linked_location_ids: locations,
        story_id,
    }
}
