//! What the model is told about the world it writes for: the world's description,
//! then the entities, locations and events linked to the story or named in it,
//! within a budget. Everything is read through story-service as the job's owner,
//! so a prompt holds only what the owner may read.

use fabula_contracts::pb::story::{
    Entity, Event, ListEntitiesRequest, ListEventsRequest, ListLocationsRequest, Location, Story, World,
};
use tonic::Status;

use super::{JobContext, KindError};

/// Characters of context at most (about 1 500 tokens at four characters a token).
pub const CONTEXT_BUDGET: usize = 6_000;
/// Characters of a story's content sent to the model at most (about 6 000 tokens).
pub const CONTENT_BUDGET: usize = 24_000;
/// Items asked of story-service a page (its largest page).
const PAGE_SIZE: i32 = 200;

/// The world's entities, locations and events, as the owner may read them.
pub struct WorldFacts {
    pub entities: Vec<Entity>,
    pub locations: Vec<Location>,
    pub events: Vec<Event>,
}

/// Reads every entity, location and event of `world_id`, the three lists at once.
pub async fn world_facts(ctx: &JobContext<'_>, world_id: &str) -> Result<WorldFacts, KindError> {
    let entities = all_pages(|page_token| async move {
        let request =
            ListEntitiesRequest { world_id: world_id.into(), page_size: PAGE_SIZE, page_token, ..Default::default() };
        let page = ctx.story.entities().list_entities(ctx.as_owner(request)).await?.into_inner();
        Ok((page.entities, page.next_page_token))
    });
    let locations = all_pages(|page_token| async move {
        let request =
            ListLocationsRequest { world_id: world_id.into(), page_size: PAGE_SIZE, page_token, ..Default::default() };
        let page = ctx.story.locations().list_locations(ctx.as_owner(request)).await?.into_inner();
        Ok((page.locations, page.next_page_token))
    });
    let events = all_pages(|page_token| async move {
        let request =
            ListEventsRequest { world_id: world_id.into(), page_size: PAGE_SIZE, page_token, ..Default::default() };
        let page = ctx.story.events().list_events(ctx.as_owner(request)).await?.into_inner();
        Ok((page.events, page.next_page_token))
    });
    let (entities, locations, events) = tokio::try_join!(entities, locations, events)?;
    Ok(WorldFacts { entities, locations, events })
}

/// Every item of a list, following its page tokens: `page` fetches the page of a
/// token and returns its items and the next token (empty after the last page).
async fn all_pages<T, Fut>(page: impl Fn(String) -> Fut) -> Result<Vec<T>, Status>
where
    Fut: Future<Output = Result<(Vec<T>, String), Status>>,
{
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let (batch, next) = page(page_token).await?;
        items.extend(batch);
        if next.is_empty() {
            return Ok(items);
        }
        page_token = next;
    }
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
    // An event matters when it is part of the story, named in it, or about an
    // entity or place the story is linked to.
    let story_id = story.map(|s| s.id.as_str());
    let about_linked = |event: &Event| {
        event.entity_ids.iter().any(|id| entity_links.contains(id))
            || event.location_ids.iter().any(|id| location_links.contains(id))
    };
    let event_relevant = |event: &&Event| {
        story_id.is_none()
            || event.story_id.as_deref() == story_id
            || about_linked(event)
            || (!event.title.is_empty() && text.contains(&event.title.to_lowercase()))
    };
    for event in facts.events.iter().filter(event_relevant) {
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
        let event = |title: &str, story_id: Option<&str>, entity_ids: &[&str]| Event {
            title: title.into(),
            story_id: story_id.map(Into::into),
            entity_ids: entity_ids.iter().map(|&id| id.into()).collect(),
            ..Default::default()
        };
        let facts = WorldFacts {
            entities: vec![entity("1", "Aria"), entity("2", "Borin"), entity("3", "Cael")],
            locations: vec![],
            events: vec![
                event("The crossing", Some("s"), &[]),
                event("Aria is crowned", None, &["1"]),
                event("The long walk", None, &[]),
                event("The flood", Some("other"), &["3"]),
            ],
        };
        let story = Story {
            id: "s".into(),
            content: "Borin walked, remembering the long walk.".into(),
            entity_ids: vec!["1".into()],
            ..Default::default()
        };
        let context = describe(&world, &facts, Some(&story));
        assert!(context.contains("Aria") && context.contains("Borin"), "{context}");
        assert!(!context.contains("Cael"), "an unrelated entity was included: {context}");
        for (title, why) in [
            ("The crossing", "an event of the story"),
            ("Aria is crowned", "an event of a linked entity"),
            ("The long walk", "an event the story names"),
        ] {
            assert!(context.contains(title), "{why} was left out: {context}");
        }
        assert!(!context.contains("The flood"), "an unrelated event was included: {context}");
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
