//! What the model is told about the world it writes for: the world's description,
//! then the entities, locations and events linked to the story or named in it,
//! within a budget. Everything is read through story-service as the job's owner,
//! so a prompt holds only what the owner may read.

use fabula_proto::pb::story::{
    Entity, Event, ListEntitiesRequest, ListEventsRequest, ListLocationsRequest, Location, Story, World,
};

use super::{Failure, JobContext};

/// Characters of context at most (about 1 500 tokens at four characters a token).
pub const CONTEXT_BUDGET: usize = 6_000;
/// Characters of a story's content sent to the model at most (about 6 000 tokens).
pub const CONTENT_BUDGET: usize = 24_000;
/// Items of each kind read from story-service to choose from.
const CANDIDATES: i32 = 200;

/// The world's entities, locations and events, as the owner may read them.
pub struct WorldFacts {
    pub entities: Vec<Entity>,
    pub locations: Vec<Location>,
    pub events: Vec<Event>,
}

/// Reads the facts of `world_id` (the first 200 of each kind).
pub async fn world_facts(ctx: &JobContext<'_>, world_id: &str) -> Result<WorldFacts, Failure> {
    let as_owner = |m| ctx.story.as_user(ctx.owner, m);
    let entities = ctx
        .story
        .entities()
        .list_entities(as_owner(ListEntitiesRequest {
            world_id: world_id.into(),
            page_size: CANDIDATES,
            ..Default::default()
        }))
        .await?
        .into_inner()
        .entities;
    let locations = ctx
        .story
        .locations()
        .list_locations(ctx.story.as_user(
            ctx.owner,
            ListLocationsRequest { world_id: world_id.into(), page_size: CANDIDATES, ..Default::default() },
        ))
        .await?
        .into_inner()
        .locations;
    let events = ctx
        .story
        .events()
        .list_events(ctx.story.as_user(
            ctx.owner,
            ListEventsRequest { world_id: world_id.into(), page_size: CANDIDATES, ..Default::default() },
        ))
        .await?
        .into_inner()
        .events;
    Ok(WorldFacts { entities, locations, events })
}

/// The context block for a prompt about `story` (or the whole world when `None`):
/// the facts that matter most first, cut at the budget.
pub fn describe(world: &World, facts: &WorldFacts, story: Option<&Story>) -> String {
    let text = story.map(|s| s.content.to_lowercase()).unwrap_or_default();
    let relevant = |id: &str, name: &str, linked: &[String]| {
        story.is_none() || linked.iter().any(|l| l == id) || (!name.is_empty() && text.contains(&name.to_lowercase()))
    };
    let mut lines = vec![fact(format!("World: {}", world.name), &clip(&world.description, 1_000))];
    let (entity_links, location_links) = story.map_or((&[][..], &[][..]), |s| (&s.entity_ids[..], &s.location_ids[..]));
    for entity in facts.entities.iter().filter(|e| relevant(&e.id, &e.name, entity_links)) {
        let name = format!("Character or thing: {} [{}]", entity.name, entity.entity_type);
        lines.push(fact(name, &clip(&entity.description, 200)));
    }
    for location in facts.locations.iter().filter(|l| relevant(&l.id, &l.name, location_links)) {
        lines.push(fact(format!("Place: {}", location.name), &clip(&location.description, 200)));
    }
    let story_id = story.map(|s| s.id.as_str());
    for event in facts.events.iter().filter(|e| story_id.is_none() || e.story_id.as_deref() == story_id) {
        lines.push(format!("Event: year {} ({}) {}", event.year, event.era, clip(&event.title, 200)));
    }
    within_budget(lines, CONTEXT_BUDGET)
}

/// One line of the context: what is named, then ` — ` and what is said of it, if anything.
fn fact(named: String, said: &str) -> String {
    if said.trim().is_empty() { named } else { format!("{named} — {said}") }
}

/// The lines, in order, that fit in `budget` characters.
fn within_budget(lines: Vec<String>, budget: usize) -> String {
    let mut used = 0;
    let mut kept = Vec::new();
    for line in lines {
        let cost = line.chars().count() + 1;
        if used + cost > budget {
            break;
        }
        used += cost;
        kept.push(line);
    }
    kept.join("\n")
}

/// `text` cut to at most `max` characters, on a character boundary.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_what_the_story_links_or_names_and_fits_the_budget() {
        let world = World { name: "Eldoria".into(), description: "A land of rivers.".into(), ..Default::default() };
        let entity = |id: &str, name: &str| Entity { id: id.into(), name: name.into(), ..Default::default() };
        let facts = WorldFacts {
            entities: vec![entity("1", "Aria"), entity("2", "Borin"), entity("3", "Cael")],
            locations: vec![],
            events: vec![],
        };
        let story = Story {
            id: "s".into(),
            content: "Borin walked.".into(),
            entity_ids: vec!["1".into()],
            ..Default::default()
        };
        let context = describe(&world, &facts, Some(&story));
        assert!(context.contains("Aria") && context.contains("Borin"), "{context}");
        assert!(!context.contains("Cael"), "an unrelated entity was included: {context}");
        assert!(context.starts_with("World: Eldoria — A land of rivers.\nCharacter or thing: Aria []\n"), "{context}");
        let bare = describe(
            &World { name: "Nowhere".into(), ..Default::default() },
            &WorldFacts { entities: vec![], locations: vec![], events: vec![] },
            None,
        );
        assert_eq!(bare, "World: Nowhere", "nothing said, nothing added");
        assert!(within_budget(vec!["x".repeat(10); 100], 55).len() <= 55);
    }

    #[test]
    fn clip_respects_characters() {
        assert_eq!(clip("ééé", 2), "éé…");
        assert_eq!(clip("ab", 5), "ab");
    }
}
