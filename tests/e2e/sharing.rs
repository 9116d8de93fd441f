//! Who sees and changes what, through the gateway: a private world is invisible to a
//! stranger, a reader reads but cannot write, a co-author writes what is in the world
//! but not the world itself, unsharing takes access away, and a public world is
//! readable by anyone, signed in or not.

use fabula_testkit::{
    Backend, both_databases,
    rest::{Rest, RestUser, id_of},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack;

both_databases!(a_private_world_is_shared_by_role_and_unshared, a_public_world_is_readable_by_anyone);

/// Whether `user`'s list of worlds holds `world_id`.
async fn lists_world(user: &Rest, world_id: &str) -> bool {
    let worlds = user.get("/v1/worlds").await.expect(StatusCode::OK, "list worlds");
    worlds["worlds"].as_array().is_some_and(|w| w.iter().any(|w| w["id"] == world_id))
}

async fn share(owner: &RestUser, world_id: &str, user: &str, role: &str) -> Value {
    let share = json!({"user": user, "role": role});
    owner.api.post(&format!("/v1/worlds/{world_id}/shares"), share).await.expect(StatusCode::OK, "share")
}

async fn a_private_world_is_shared_by_role_and_unshared(backend: Backend) {
    let running = stack::start(backend).await;
    let api = running.rest();
    let (ada, bob) = (api.register("ada").await, api.register("bob").await);
    let world = json!({"name": "Eldoria", "visibility": "PRIVATE"});
    let world_id = id_of(&ada.api.post("/v1/worlds", world).await.expect(StatusCode::CREATED, "create"));
    let world_path = format!("/v1/worlds/{world_id}");
    let stories = format!("{world_path}/stories");
    let story = id_of(&ada.api.post(&stories, json!({"title": "Ada's"})).await.expect(StatusCode::CREATED, "story"));
    let entity = ada.api.post(&format!("{world_path}/entities"), json!({"name": "Mira"})).await;
    let entity_path = format!("/v1/entities/{}", id_of(&entity.expect(StatusCode::CREATED, "entity")));
    let rename = json!({"name": "Mira Vale"});

    // A stranger cannot tell the world exists, even when trying to change it.
    for (what, answer) in [
        ("read the world", bob.api.get(&world_path).await),
        ("read a story", bob.api.get(&format!("/v1/stories/{story}")).await),
        ("edit the world", bob.api.patch(&world_path, json!({"name": "Mine"})).await),
        ("write a story", bob.api.post(&stories, json!({"title": "Bob's"})).await),
    ] {
        answer.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND", "NOT_FOUND", &format!("a stranger may not {what}"));
    }
    assert!(!lists_world(&bob.api, &world_id).await, "nor find it in a list");

    // A reader reads everything in it and changes nothing.
    let shared = share(&ada, &world_id, "bob", "READER").await;
    assert_eq!(
        (&shared["userId"], &shared["username"], &shared["role"]),
        (&json!(bob.id), &json!("bob"), &json!("READER"))
    );
    assert_eq!(bob.api.get(&world_path).await.expect(StatusCode::OK, "a reader reads")["name"], "Eldoria");
    bob.api.get(&format!("/v1/stories/{story}")).await.expect(StatusCode::OK, "a reader reads a draft story");
    assert!(lists_world(&bob.api, &world_id).await, "a shared world is listed");
    let shares = bob.api.get(&format!("{world_path}/shares")).await.expect(StatusCode::OK, "a reader sees the shares");
    assert_eq!(shares["shares"][0]["userId"], bob.id.as_str());
    for (what, answer) in [
        ("write a story", bob.api.post(&stories, json!({"title": "Bob's"})).await),
        ("edit an entity", bob.api.patch(&entity_path, rename.clone()).await),
        ("edit the world", bob.api.patch(&world_path, json!({"name": "Mine"})).await),
    ] {
        answer.expect_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            &format!("reader: {what}"),
        );
    }

    // A co-author writes in the world, but only the owner changes or shares the world.
    share(&ada, &world_id, &bob.id, "CO_AUTHOR").await;
    let bobs = bob.api.post(&stories, json!({"title": "Bob's"})).await.expect(StatusCode::CREATED, "co-author writes");
    assert_eq!(bobs["ownerId"], bob.id.as_str(), "the story is the co-author's");
    let renamed = bob.api.patch(&entity_path, rename).await;
    assert_eq!(renamed.expect(StatusCode::OK, "a co-author edits the owner's entity")["name"], "Mira Vale");
    for (what, answer) in [
        ("edit the world", bob.api.patch(&world_path, json!({"name": "Mine"})).await),
        ("share it", bob.api.post(&format!("{world_path}/shares"), json!({"user": "ada", "role": "READER"})).await),
        ("delete it", bob.api.delete(&world_path).await),
    ] {
        answer.expect_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "PERMISSION_DENIED",
            &format!("co-author: {what}"),
        );
    }

    // Unshared, the world is hidden again, the co-author's own story with it.
    let unshare = format!("{world_path}/shares/{}", bob.id);
    ada.api.delete(&unshare).await.expect(StatusCode::NO_CONTENT, "unshare");
    let hidden = bob.api.get(&world_path).await;
    hidden.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND", "NOT_FOUND", "an unshared world");
    let own = bob.api.get(&format!("/v1/stories/{}", id_of(&bobs))).await;
    assert_eq!(own.status, StatusCode::NOT_FOUND, "a story in a world no longer shared: {}", own.body);
    assert!(!lists_world(&bob.api, &world_id).await, "no longer listed");
    let shares = ada.api.get(&format!("{world_path}/shares")).await.expect(StatusCode::OK, "shares");
    assert!(shares.get("shares").is_none_or(|s| s == &json!([])), "no share left: {shares}");
    running.stop().await;
}

async fn a_public_world_is_readable_by_anyone(backend: Backend) {
    let running = stack::start(backend).await;
    let api = running.rest();
    let (ada, bob) = (api.register("ada").await, api.register("bob").await);
    let world = json!({"name": "Open Lands", "visibility": "PUBLIC"});
    let world_id = id_of(&ada.api.post("/v1/worlds", world).await.expect(StatusCode::CREATED, "create"));
    let private = json!({"name": "Closed Lands", "visibility": "PRIVATE"});
    let private_id = id_of(&ada.api.post("/v1/worlds", private).await.expect(StatusCode::CREATED, "create"));
    let stories = format!("/v1/worlds/{world_id}/stories");
    let public = json!({"title": "Told", "visibility": "PUBLIC"});
    let public = id_of(&ada.api.post(&stories, public).await.expect(StatusCode::CREATED, "public story"));
    let draft = id_of(&ada.api.post(&stories, json!({"title": "Untold"})).await.expect(StatusCode::CREATED, "draft"));
    let anonymous = api.anonymous();

    for reader in [&anonymous, &bob.api] {
        let world = reader.get(&format!("/v1/worlds/{world_id}")).await.expect(StatusCode::OK, "a public world");
        assert_eq!(world["name"], "Open Lands");
        reader.get(&format!("/v1/stories/{public}")).await.expect(StatusCode::OK, "a public story");
        let hidden = reader.get(&format!("/v1/stories/{draft}")).await;
        hidden.expect_error(StatusCode::NOT_FOUND, "NOT_FOUND", "NOT_FOUND", "a draft story of a public world");
        let listed = reader.get(&stories).await.expect(StatusCode::OK, "list stories");
        let listed: Vec<String> =
            listed["stories"].as_array().map(|s| s.iter().map(id_of).collect()).unwrap_or_default();
        assert_eq!(listed, [public.as_str()], "only the public story is listed");
        assert!(lists_world(reader, &world_id).await && !lists_world(reader, &private_id).await);
    }
    let write = bob.api.post(&stories, json!({"title": "Bob's"})).await;
    write.expect_error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", "PERMISSION_DENIED", "a stranger writes");
    let write = anonymous.post(&stories, json!({"title": "Nobody's"})).await;
    write.expect_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "TOKEN_MISSING", "anonymous writes");
    running.stop().await;
}
