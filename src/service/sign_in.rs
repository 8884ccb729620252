//! Sign-in with OpenID Connect: the providers on offer, a sign-in started (its `state`,
//! `nonce` and PKCE verifier kept in the database for ten minutes, so that any worker
//! or node can finish it), and a sign-in finished: the `state` used up, the ID token
//! checked ([`super::oidc`]), and the account found, linked or made.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::accounts::{create_account, issue_refresh, NewUser, Tokens};
use super::keys::NewApiKey;
use super::oidc::{Identity, Provider};
use super::Domain;
use crate::auth::secrets::digest;
use crate::config::{Config, Registration};
use crate::db::oidc::{self as store, LoginRow};
use crate::db::users::{self, UserRow};
use crate::db::Conn;
use crate::error::{detail, ApiError, ApiResult, Text};
use crate::limits::PerIp;
use crate::util::{now_unix, random_id};

/// How long a started sign-in may take to come back.
pub const LOGIN_TTL: Duration = Duration::from_secs(10 * 60);
/// How long start-up waits for the providers' first answers.
const DISCOVER_AT_START_WITHIN: Duration = Duration::from_secs(5);

/// The configured providers, in the order of the configuration.
pub struct Providers {
    list: Vec<Arc<Provider>>,
}

impl Providers {
    /// The providers of `config`, with redirect URIs under `base_url`; none is
    /// discovered yet ([`Providers::discover`]).
    pub fn new(config: &Config, base_url: &str) -> Result<Self, String> {
        let http = super::oidc::http_client()?;
        let base_url = base_url.trim_end_matches('/');
        let list = (config.auth.oidc.iter())
            .map(|p| Arc::new(Provider::new(p.clone(), base_url, http.clone())))
            .collect();
        Ok(Self { list })
    }

    /// Discovers every provider: waits up to [`DISCOVER_AT_START_WITHIN`] for them,
    /// and leaves those that did not answer to be retried in the background.
    pub async fn discover(&self) {
        let all = futures_util::future::join_all(self.list.iter().map(|p| p.discover()));
        let _ = tokio::time::timeout(DISCOVER_AT_START_WITHIN, all).await;
        for provider in &self.list {
            if !provider.is_discovered() {
                actix_web::rt::spawn(provider.clone().discover_until_done());
            }
        }
    }

    /// Whether a provider is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.list.iter().any(|p| p.name() == name)
    }

    /// The provider named `name`; 404 like any path that does not exist.
    fn get(&self, name: &str) -> ApiResult<&Arc<Provider>> {
        (self.list.iter())
            .find(|p| p.name() == name)
            .ok_or_else(ApiError::no_route)
    }
}

/// A provider as `GET /auth/providers` lists it.
pub struct ProviderInfo {
    pub name: String,
    pub label: String,
}

/// Where a sign-in came back to, as the provider sent it.
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's `error=` (the user said no, or the provider refused).
    pub error: Option<String>,
}

/// An account signed in through a provider.
pub struct SignedIn {
    pub user: UserRow,
    pub tokens: Tokens,
    /// The first API key of an account made by this sign-in.
    pub key: Option<NewApiKey>,
    /// The same-origin path the sign-in asked to end on.
    pub redirect_to: Option<String>,
}

/// Whether `path` may be a sign-in's `redirect_to`: a path on this server, never
/// another origin (`//host`, `/\host` and any scheme are refused).
pub fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.contains("://")
        && !path.chars().any(char::is_control)
}

impl Domain {
    pub fn providers(&self) -> Vec<ProviderInfo> {
        (self.sign_in.list.iter())
            .map(|p| ProviderInfo {
                name: p.name().to_string(),
                label: p.config.label().to_string(),
            })
            .collect()
    }

    /// Starts a sign-in at provider `name`: where to send the browser. 502 while the
    /// provider has not been discovered.
    pub async fn start_sign_in(
        &self,
        name: &str,
        redirect_to: Option<String>,
    ) -> ApiResult<String> {
        let provider = self.sign_in.get(name)?;
        if redirect_to
            .as_deref()
            .is_some_and(|path| !is_local_path(path))
        {
            return Err(ApiError::bad_request(detail::INVALID_REDIRECT_TO));
        }
        let authorization = provider.authorize().await?;
        let now = now_unix();
        let row = LoginRow {
            state_hash: digest(&authorization.state),
            provider: name.to_string(),
            nonce: authorization.nonce,
            pkce_verifier: authorization.pkce_verifier,
            redirect_uri: provider.redirect_uri.clone(),
            redirect_to,
            expires_at: now + LOGIN_TTL.as_secs() as i64,
        };
        self.db(move |conn| Ok(store::insert_login(conn, &row, now)?))
            .await?;
        Ok(authorization.url)
    }

    /// Finishes a sign-in at provider `name`, a login attempt from `ip` (limited as
    /// password logins are): its `state` is used up (400 when unknown, expired, used
    /// before or another provider's), then the provider's answer is checked and the
    /// account found, linked or made.
    pub async fn finish_sign_in(
        &self,
        ip: Option<IpAddr>,
        name: &str,
        callback: Callback,
    ) -> ApiResult<SignedIn> {
        let provider = self.sign_in.get(name)?.clone();
        self.charge_ip(PerIp::Login, ip)?;
        let state = callback.state.ok_or(invalid_state())?;
        let state_hash = digest(&state);
        let login = self
            .db(move |conn| Ok(store::take_login(conn, &state_hash)?))
            .await?
            .filter(|login| login.provider == name && login.expires_at > now_unix())
            .ok_or(invalid_state())?;
        if let Some(error) = callback.error {
            tracing::info!(provider = %name, ?error, "sign-in refused by the provider");
            return Err(ApiError::LoginRefused);
        }
        let code = callback.code.ok_or(invalid_state())?;
        let identity = provider
            .identify(code, login.pkce_verifier, login.nonce, &login.redirect_uri)
            .await?;
        let registration = self.config.registration;
        let tier = self.config.limits.default_tier.clone();
        let refresh_ttl = self.refresh_ttl();
        let (user, key, refresh) = self
            .db(move |conn| {
                let (user, key) = account_of(conn, &identity, registration, &tier)?;
                let refresh = issue_refresh(conn, &user.id, None, refresh_ttl)?;
                Ok((user, key, refresh))
            })
            .await?;
        let tokens = self.new_tokens(&user.id, refresh);
        Ok(SignedIn {
            user,
            tokens,
            key,
            redirect_to: login.redirect_to,
        })
    }
}

fn invalid_state() -> ApiError {
    ApiError::bad_request(detail::INVALID_LOGIN_STATE)
}

/// The account an identity signs in to: the one linked to it; else the one with its
/// email, when the provider has verified that email (then linked); else a new one
/// (with its first API key), when registration is open.
fn account_of(
    conn: &mut Conn,
    identity: &Identity,
    registration: Registration,
    tier: &str,
) -> ApiResult<(UserRow, Option<NewApiKey>)> {
    let (issuer, subject) = (&identity.issuer, &identity.subject);
    if let Some(user_id) = store::linked_user(conn, issuer, subject)? {
        let user = users::by_id(conn, &user_id)?.ok_or(ApiError::InvalidCredentials)?;
        return Ok((user, None));
    }
    let email = match (&identity.email, identity.email_verified) {
        (Some(email), true) => email,
        _ => return Err(ApiError::forbidden_because(detail::EMAIL_NOT_VERIFIED)),
    };
    let (user, key) = match users::by_email(conn, email)? {
        Some(user) => (user, None),
        None if registration == Registration::Closed => {
            return Err(ApiError::forbidden_because(detail::REGISTRATION_CLOSED));
        }
        None => {
            let (user, key) = create_with_free_username(conn, email, tier)?;
            (user, Some(key))
        }
    };
    let linked = store::link(conn, issuer, subject, &user.id, now_unix())?;
    tracing::info!(account = %user.username, %issuer, "identity linked");
    match linked == user.id {
        true => Ok((user, key)),
        // Another sign-in of this identity linked it first.
        false => Ok((
            users::by_id(conn, &linked)?.ok_or(ApiError::Internal)?,
            None,
        )),
    }
}

/// Makes a password-less account for `email`, named after its local part: as it is
/// when free, else with a number, else with a random suffix.
fn create_with_free_username(
    conn: &mut Conn,
    email: &str,
    tier: &str,
) -> ApiResult<(UserRow, NewApiKey)> {
    let base = username_from_email(email);
    let numbered = (2..10).map(|n| format!("{base}{n}"));
    let random = std::iter::repeat_with(|| format!("{base}-{}", random_id(6).to_lowercase()));
    for username in std::iter::once(base.clone())
        .chain(numbered)
        .chain(random.take(5))
    {
        let new = NewUser {
            email,
            username: &username,
            password: None,
            tier,
        };
        match create_account(conn, &new) {
            Err(ApiError::Conflict(text)) if text == Text::from(detail::USERNAME_TAKEN) => continue,
            other => return other,
        }
    }
    Err(ApiError::conflict(detail::USERNAME_TAKEN))
}

/// A username from an email's local part: the characters usernames allow, 3 to 48
/// of them (room for a suffix).
fn username_from_email(email: &str) -> String {
    let local = email.split('@').next().unwrap_or_default();
    let mut name: String = (local.chars())
        .filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c))
        .take(48)
        .collect();
    while name.len() < 3 {
        name.push('_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_server_may_be_redirected_to() {
        for ok in ["/", "/app/", "/app/topics?x=1#y"] {
            assert!(is_local_path(ok), "{ok}");
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "app/",
            "",
            "/x?next=https://evil.example",
            "/a\r\nSet-Cookie: x=1",
            "javascript:alert(1)",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }

    #[test]
    fn usernames_come_from_the_email() {
        assert_eq!(username_from_email("Ann.Lee+x@example.com"), "Ann.Leex");
        assert_eq!(username_from_email("a@example.com"), "a__");
        assert_eq!(
            username_from_email(&format!("{}@x.y", "z".repeat(80))).len(),
            48
        );
    }
}
