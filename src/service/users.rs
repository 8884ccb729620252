//! Account administration (the admin CLI's `user` commands): add, list, set a tier,
//! delete. It runs where no server does, so it needs only a [`Store`].

use super::accounts::{create_account, NewUser};
use super::keys::NewApiKey;
use super::Store;
use crate::db::users::{self, UserRow};
use crate::error::{ApiError, ApiResult};

/// What a new account needs; the tier defaults to `limits.default_tier`.
pub struct NewAccount {
    pub email: String,
    pub username: String,
    pub password: String,
    pub tier: Option<String>,
}

impl Store {
    /// A tier the configuration names.
    fn check_tier(&self, tier: &str) -> ApiResult<()> {
        let tiers = &self.config.limits.tiers;
        if tiers.contains_key(tier) {
            return Ok(());
        }
        let known: Vec<_> = tiers.keys().cloned().collect();
        Err(ApiError::unknown_tier(tier, &known))
    }

    /// Creates an account with its first API key, as registering does.
    pub async fn add_user(&self, new: NewAccount) -> ApiResult<(UserRow, NewApiKey)> {
        let tier = new
            .tier
            .unwrap_or_else(|| self.config.limits.default_tier.clone());
        self.check_tier(&tier)?;
        let created = self
            .db(move |conn| {
                let new = NewUser {
                    email: &new.email,
                    username: &new.username,
                    password: Some(&new.password),
                    tier: &tier,
                };
                create_account(conn, &new)
            })
            .await?;
        self.accounts_changed().await?;
        Ok(created)
    }

    /// Every account.
    pub async fn users(&self) -> ApiResult<Vec<UserRow>> {
        self.db(|conn| Ok(users::all(conn)?)).await
    }

    /// Moves the account of `email` to `tier`; `false` when there is no such account.
    pub async fn set_tier(&self, email: &str, tier: &str) -> ApiResult<bool> {
        self.check_tier(tier)?;
        let (email, tier) = (email.to_lowercase(), tier.to_string());
        self.changed_if(move |conn| Ok(users::set_tier(conn, &email, &tier)? > 0))
            .await
    }

    /// Deletes the account of `email` with its topics, keys and tokens; `false` when
    /// there is no such account.
    pub async fn delete_user(&self, email: &str) -> ApiResult<bool> {
        let email = email.to_lowercase();
        self.changed_if(move |conn| Ok(users::delete(conn, &email)? > 0))
            .await
    }

    /// Runs `change`, and reports that accounts changed when it says it changed one.
    async fn changed_if<F>(&self, change: F) -> ApiResult<bool>
    where
        F: FnOnce(&mut crate::db::Conn) -> ApiResult<bool> + Send + 'static,
    {
        let changed = self.db(change).await?;
        if changed {
            self.accounts_changed().await?;
        }
        Ok(changed)
    }
}
