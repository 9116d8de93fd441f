//! The users a test acts as: one user type, and users of each role registered through
//! story-service: a plain user, the administrator every test service starts with, a
//! user with model access, and a reader or co-author of a world.

use fabula_contracts::pb::{
    accounts::{AuthResponse, LoginRequest, RegisterRequest, Role, UpdateUserRequest, User},
    story::{ShareRole, ShareWorldRequest},
};
use prost_types::FieldMask;

use crate::{StoryClients, authed};

/// The administrator every test service or stack is started with.
pub const ADMIN_USERNAME: &str = "root_admin";
pub const ADMIN_PASSWORD: &str = "admin password 123";
/// The password of every registered test user.
pub const PASSWORD: &str = "correct horse battery";

/// A signed-in user and their tokens.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub token: String,
    pub refresh_token: String,
}

impl TestUser {
    fn signed_in(response: AuthResponse) -> Self {
        let user = response.user.expect("a signed-in answer names the user");
        Self {
            id: user.id,
            username: user.username,
            email: user.email,
            token: response.access_token,
            refresh_token: response.refresh_token,
        }
    }
}

impl StoryClients {
    /// Registers `username` (email `<username>@example.test`, password [`PASSWORD`]).
    pub async fn register(&self, username: &str) -> TestUser {
        let email = format!("{}@example.test", username.to_lowercase());
        let request = RegisterRequest { username: username.into(), email, password: PASSWORD.into() };
        TestUser::signed_in(self.accounts().register(request).await.expect("register").into_inner())
    }

    /// Signs in the administrator the service was started with.
    pub async fn admin(&self) -> TestUser {
        let request = LoginRequest { login: ADMIN_USERNAME.into(), password: ADMIN_PASSWORD.into() };
        let response = self.accounts().login(request).await.expect("the administrator signs in").into_inner();
        assert_eq!(response.user.as_ref().map(User::role), Some(Role::Admin), "the configured administrator");
        TestUser::signed_in(response)
    }

    /// Registers `username` and has the administrator grant them model access.
    pub async fn register_with_model_access(&self, username: &str) -> TestUser {
        let user = self.register(username).await;
        self.set_model_access(&user, true).await;
        user
    }

    /// The administrator grants or revokes `user`'s model access (UpdateUser, mask `gpt_enabled`).
    pub async fn set_model_access(&self, user: &TestUser, enabled: bool) {
        let admin = self.admin().await;
        let request = UpdateUserRequest {
            user: Some(User { id: user.id.clone(), gpt_enabled: enabled, ..User::default() }),
            update_mask: Some(FieldMask { paths: vec!["gpt_enabled".into()] }),
        };
        let updated = self.accounts().update_user(authed(request, &admin.token)).await.expect("update the user");
        assert_eq!(updated.into_inner().gpt_enabled, enabled, "the administrator set model access");
    }

    /// Registers `username` and has `owner` share `world_id` with them as `role`.
    pub async fn register_member(&self, owner: &TestUser, world_id: &str, username: &str, role: ShareRole) -> TestUser {
        let member = self.register(username).await;
        self.share(owner, world_id, &member, role).await;
        member
    }

    /// Shares `world_id` of `owner` with `user` as `role`.
    pub async fn share(&self, owner: &TestUser, world_id: &str, user: &TestUser, role: ShareRole) {
        let request = ShareWorldRequest { world_id: world_id.into(), user: user.id.clone(), role: role.into() };
        self.worlds().share_world(authed(request, &owner.token)).await.expect("share the world");
    }
}
