//! The worlds and stories a test starts from, made through story-service as their
//! owner.

use fabula_contracts::pb::story::{CreateStoryRequest, CreateWorldRequest, Story, Visibility, World};

use crate::{StoryClients, TestUser, authed};

impl StoryClients {
    /// Creates a world of `owner` named `name` and returns it.
    pub async fn create_world(&self, owner: &TestUser, name: &str, visibility: Visibility) -> World {
        self.create_world_from(owner, World { name: name.into(), visibility: visibility.into(), ..World::default() })
            .await
    }

    /// Creates `world` as `owner` and returns it as stored.
    pub async fn create_world_from(&self, owner: &TestUser, world: World) -> World {
        let request = CreateWorldRequest { world: Some(world), request_id: String::new() };
        self.worlds().create_world(authed(request, &owner.token)).await.expect("create a world").into_inner()
    }

    /// Creates a story by `author` titled `title` in `world_id` and returns it.
    pub async fn create_story(&self, author: &TestUser, world_id: &str, title: &str, visibility: Visibility) -> Story {
        let story = Story { title: title.into(), visibility: visibility.into(), ..Story::default() };
        self.create_story_from(author, world_id, story).await
    }

    /// Creates `story` by `author` in `world_id` and returns it as stored.
    pub async fn create_story_from(&self, author: &TestUser, world_id: &str, story: Story) -> Story {
        let request = CreateStoryRequest { world_id: world_id.into(), story: Some(story), request_id: String::new() };
        self.stories().create_story(authed(request, &author.token)).await.expect("create a story").into_inner()
    }
}
