//! No lost writes under concurrency, and pagination walks that see each item once.

use crate::common;

use std::collections::HashSet;

use common::*;
use fabula_contracts::pb::story::{
    CreateEntityRequest, CreateStoryRequest, Entity, ListEntitiesRequest, ListStoriesRequest, Story, Visibility,
};

both_databases!(sixty_four_clients_creating_twenty_stories_each_lose_nothing, a_pagination_walk_over_523_entities);

const CLIENTS: usize = 64;
const STORIES_EACH: usize = 20;
const ENTITIES: usize = 523;

async fn sixty_four_clients_creating_twenty_stories_each_lose_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Busy", Visibility::Private).await;

    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        // Each client on a connection of its own.
        let mut stories = StoryClients::connect(app.addr).await.stories();
        let (world_id, token) = (world.id.clone(), alice.token.clone());
        clients.spawn(async move {
            for n in 0..STORIES_EACH {
                let story = Story { title: format!("Client {client}, story {n}"), ..Story::default() };
                let request =
                    CreateStoryRequest { world_id: world_id.clone(), story: Some(story), request_id: String::new() };
                stories.create_story(authed(request, &token)).await.expect("a concurrent create succeeds");
            }
        });
    }
    clients.join_all().await;

    let mut stories = app.stories();
    let (mut ids, mut orders, mut titles, mut token) = (HashSet::new(), HashSet::new(), HashSet::new(), String::new());
    loop {
        let request = ListStoriesRequest {
            world_id: world.id.clone(),
            page_size: 200,
            page_token: token.clone(),
            ..ListStoriesRequest::default()
        };
        let page = stories.list_stories(authed(request, &alice.token)).await.unwrap().into_inner();
        assert_eq!(page.total_size as usize, CLIENTS * STORIES_EACH, "total_size");
        for story in page.stories {
            assert!(ids.insert(story.id.clone()), "story {} listed twice", story.id);
            assert!(orders.insert(story.order), "two stories share order {}", story.order);
            titles.insert(story.title);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(ids.len(), CLIENTS * STORIES_EACH, "every story is listed, none lost");
    assert_eq!(titles.len(), CLIENTS * STORIES_EACH, "every client's every story is there");
    assert_eq!(app.count("stories WHERE world_id = $1", &[&world.id]).await, (CLIENTS * STORIES_EACH) as i64);
}

async fn a_pagination_walk_over_523_entities(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.register("alice").await;
    let world = app.create_world(&alice, "Crowded", Visibility::Private).await;
    let mut lanes = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let (mut entities, world_id, token) = (app.entities(), world.id.clone(), alice.token.clone());
        lanes.spawn(async move {
            for n in (lane..ENTITIES).step_by(8) {
                let entity = Entity { name: format!("Entity {n}"), ..Entity::default() };
                let request =
                    CreateEntityRequest { world_id: world_id.clone(), entity: Some(entity), request_id: String::new() };
                entities.create_entity(authed(request, &token)).await.expect("create an entity");
            }
        });
    }
    lanes.join_all().await;

    let mut entities = app.entities();
    let (mut seen, mut token, mut pages) = (HashSet::new(), String::new(), 0);
    loop {
        let request = ListEntitiesRequest {
            world_id: world.id.clone(),
            page_size: 50,
            page_token: token.clone(),
            filter: String::new(),
        };
        let page = entities.list_entities(authed(request, &alice.token)).await.unwrap().into_inner();
        pages += 1;
        assert_eq!(page.total_size as usize, ENTITIES, "total_size on page {pages}");
        for entity in &page.entities {
            assert!(seen.insert(entity.id.clone()), "entity {} seen twice", entity.id);
        }
        if page.next_page_token.is_empty() {
            assert_eq!(page.entities.len(), ENTITIES % 50, "the last page holds the rest");
            break;
        }
        assert_eq!(page.entities.len(), 50, "page {pages} is full");
        token = page.next_page_token;
    }
    assert_eq!((seen.len(), pages), (ENTITIES, ENTITIES.div_ceil(50)), "each entity seen exactly once");
}
