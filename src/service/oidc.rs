//! OpenID Connect providers as a client sees them: discovery (retried in the background
//! while a provider is down), the authorization URL of a sign-in (PKCE S256, `state`,
//! `nonce`), and the code exchange, whose ID token the `openidconnect` crate checks:
//! the signature against the provider's JWKS (fetched again, at most every
//! [`REFETCH_EVERY`], when a token names a key it does not hold), `iss`, `aud`, `exp`,
//! `iat` and `nonce`, with [`CLOCK_SKEW`] of leeway.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier,
    CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    JwsSigningAlgorithm, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, SignatureVerificationError, TokenResponse,
};

use crate::config::OidcProvider;
use crate::error::{ApiError, ApiResult};

/// Leeway for the clocks of the provider and this server (`exp`, `iat`).
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);
/// A token naming a key the cached JWKS lacks fetches it again at most this often.
pub const REFETCH_EVERY: Duration = Duration::from_secs(2);
/// Discovery of a provider that is down is tried again after 1 s, then twice as long
/// each time, up to this.
const RETRY_AT_MOST_EVERY: Duration = Duration::from_secs(30);
/// A sign-in started while its provider is undiscovered tries discovery itself, unless
/// a try began less than this ago.
const TRY_ON_DEMAND_EVERY: Duration = Duration::from_secs(1);
/// Any one request to a provider.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A sign-in about to be sent to its provider: where the browser goes, and what the
/// callback needs to finish it.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Who the provider says signed in, from a checked ID token (and the userinfo endpoint
/// when the token carries no email).
#[derive(Debug)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
}

/// One configured provider and what discovery found out about it.
pub struct Provider {
    pub config: OidcProvider,
    /// `{base_url}/auth/{name}/callback`.
    pub redirect_uri: String,
    /// `None` until discovery succeeds.
    metadata: RwLock<Option<Arc<CoreProviderMetadata>>>,
    /// When the JWKS was last fetched for a key it lacked.
    refetched: Mutex<Option<Instant>>,
    /// When discovery was last tried.
    tried: Mutex<Option<Instant>>,
    http: reqwest::Client,
}

/// The HTTP client of every provider request: rustls, no redirects followed (the
/// provider's endpoints answer directly), no connections kept (sign-ins are rare, and
/// each HTTP worker runs a runtime of its own).
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| format!("cannot make the OpenID Connect HTTP client: {e}"))
}

impl Provider {
    pub fn new(config: OidcProvider, base_url: &str, http: reqwest::Client) -> Self {
        let redirect_uri = format!("{base_url}/auth/{}/callback", config.name);
        Self {
            config,
            redirect_uri,
            metadata: RwLock::new(None),
            refetched: Mutex::new(None),
            tried: Mutex::new(None),
            http,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn is_discovered(&self) -> bool {
        self.metadata().is_ok()
    }

    /// Fetches the discovery document and the JWKS; kept once both arrive.
    pub async fn discover(&self) -> Result<(), String> {
        *self.tried.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let issuer = openidconnect::IssuerUrl::new(self.config.issuer().to_string())
            .map_err(|e| e.to_string())?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| error_chain(&e))?;
        *self
            .metadata
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(metadata));
        Ok(())
    }

    /// Discovers the provider, trying again with back-off until it answers.
    pub async fn discover_until_done(self: Arc<Self>) {
        let mut wait = Duration::from_secs(1);
        while !self.is_discovered() {
            match self.discover().await {
                Ok(()) => {
                    tracing::info!(provider = %self.name(), "identity provider discovered");
                    return;
                }
                Err(error) => {
                    tracing::warn!(provider = %self.name(), %error, retry_in = ?wait, "identity provider unavailable");
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RETRY_AT_MOST_EVERY);
        }
    }

    /// A provider not discovered yet is tried now (a sign-in is waiting), unless it
    /// was tried within [`TRY_ON_DEMAND_EVERY`]; the background retries go on anyway.
    async fn discovered(&self) -> ApiResult<Arc<CoreProviderMetadata>> {
        if let Ok(metadata) = self.metadata() {
            return Ok(metadata);
        }
        let tried = *self.tried.lock().unwrap_or_else(PoisonError::into_inner);
        if tried.is_none_or(|at| at.elapsed() >= TRY_ON_DEMAND_EVERY) {
            if let Err(error) = self.discover().await {
                tracing::warn!(provider = %self.name(), %error, "identity provider unavailable");
            }
        }
        self.metadata()
    }

    /// What discovery found; 502 while it has not succeeded.
    fn metadata(&self) -> ApiResult<Arc<CoreProviderMetadata>> {
        let metadata = self.metadata.read().unwrap_or_else(PoisonError::into_inner);
        metadata.clone().ok_or(ApiError::ProviderUnavailable)
    }

    fn client(&self, metadata: &CoreProviderMetadata, redirect_uri: &str) -> ApiResult<Client> {
        let redirect = RedirectUrl::new(redirect_uri.to_string()).map_err(|e| {
            tracing::error!(provider = %self.name(), error = %e, "bad redirect URI");
            ApiError::Internal
        })?;
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// The authorization-code request of a new sign-in, with PKCE (S256).
    pub async fn authorize(&self) -> ApiResult<Authorization> {
        let metadata = self.discovered().await?;
        let client = self.client(&metadata, &self.redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        // `openid` comes first; the client adds it itself.
        let scopes = self.config.scopes().into_iter().skip(1).map(Scope::new);
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(scopes)
            .set_pkce_challenge(challenge)
            .url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the callback's code for tokens and checks the ID token: 401 when the
    /// provider refuses the code or the token fails a check, 502 when the provider
    /// cannot be reached.
    pub async fn identify(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: String,
        redirect_uri: &str,
    ) -> ApiResult<Identity> {
        let metadata = self.metadata()?;
        let client = self.client(&metadata, redirect_uri)?;
        let request = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| self.unavailable("no token endpoint", &e))?;
        let response = request
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(refusal) => {
                    self.refused("code refused", &refusal)
                }
                RequestTokenError::Parse(e, _) => self.refused("token response unreadable", &e),
                other => self.unavailable("token request failed", &other),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| self.refused("no ID token", &"the token response has none"))?;
        let mut identity = self.check(id_token, &Nonce::new(nonce), metadata).await?;
        if identity.email.is_none() {
            self.add_userinfo(&client, response.access_token(), &mut identity)
                .await?;
        }
        Ok(identity)
    }

    /// Checks an ID token; a key the JWKS lacks has it fetched again (the provider may
    /// have rotated its keys), once, and then the token is checked again.
    async fn check(
        &self,
        id_token: &CoreIdToken,
        nonce: &Nonce,
        metadata: Arc<CoreProviderMetadata>,
    ) -> ApiResult<Identity> {
        let checked = self.verify(id_token, nonce, &metadata);
        let unknown_key = matches!(
            checked,
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey
            ))
        );
        let checked = match unknown_key && self.may_refetch() {
            true => {
                let metadata = self.refetch_keys(&metadata).await?;
                self.verify(id_token, nonce, &metadata)
            }
            false => checked,
        };
        checked.map_err(|e| self.refused("ID token refused", &error_chain(&e)))
    }

    fn verify(
        &self,
        id_token: &CoreIdToken,
        nonce: &Nonce,
        metadata: &CoreProviderMetadata,
    ) -> Result<Identity, ClaimsVerificationError> {
        let verifier = self.verifier(metadata);
        let claims: &CoreIdTokenClaims = id_token.claims(&verifier, nonce)?;
        Ok(Identity {
            issuer: claims.issuer().to_string(),
            subject: claims.subject().to_string(),
            email: claims.email().map(|e| e.to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
        })
    }

    /// The checks of an ID token: the algorithms the provider advertises, less `none`
    /// and the HMAC ones (whose key would be the client secret: the verifier is made
    /// without it, so none is ever accepted); `exp` and `iat` within [`CLOCK_SKEW`].
    fn verifier(&self, metadata: &CoreProviderMetadata) -> CoreIdTokenVerifier<'static> {
        let algorithms: Vec<CoreJwsSigningAlgorithm> = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter(|alg| !alg.uses_shared_secret() && **alg != CoreJwsSigningAlgorithm::None)
            .cloned()
            .collect();
        let skew = chrono::Duration::from_std(CLOCK_SKEW).unwrap_or_default();
        CoreIdTokenVerifier::new_public_client(
            ClientId::new(self.config.client_id.clone()),
            metadata.issuer().clone(),
            metadata.jwks().clone(),
        )
        .set_allowed_algs(algorithms)
        .set_time_fn(move || chrono::Utc::now() - skew)
        .set_issue_time_verifier_fn(move |issued| {
            match issued > chrono::Utc::now() + skew {
                true => Err(format!("issued in the future ({issued})")),
                false => Ok(()),
            }
        })
    }

    /// Whether a JWKS fetch for an unknown key is allowed now (and if so, takes it).
    fn may_refetch(&self) -> bool {
        let mut last = self
            .refetched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < REFETCH_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    async fn refetch_keys(
        &self,
        metadata: &CoreProviderMetadata,
    ) -> ApiResult<Arc<CoreProviderMetadata>> {
        let jwks = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| self.unavailable("JWKS fetch failed", &error_chain(&e)))?;
        tracing::info!(provider = %self.name(), keys = jwks.keys().len(), "identity provider keys fetched again");
        let fresh = Arc::new(metadata.clone().set_jwks(jwks));
        *self
            .metadata
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(fresh.clone());
        Ok(fresh)
    }

    /// The email (and whether it is verified) from the userinfo endpoint, for
    /// providers whose ID tokens do not carry it.
    async fn add_userinfo(
        &self,
        client: &Client,
        access_token: &AccessToken,
        identity: &mut Identity,
    ) -> ApiResult<()> {
        let subject = openidconnect::SubjectIdentifier::new(identity.subject.clone());
        let Ok(request) = client.user_info(access_token.clone(), Some(subject)) else {
            return Ok(());
        };
        let info: CoreUserInfoClaims = request
            .request_async(&self.http)
            .await
            .map_err(|e| self.unavailable("userinfo request failed", &e))?;
        identity.email = info.email().map(|e| e.to_string());
        identity.email_verified = info.email_verified().unwrap_or(false);
        tracing::debug!(provider = %self.name(), found = identity.email.is_some(), "email asked of the userinfo endpoint");
        Ok(())
    }

    /// 401 `Could not validate credentials`, with the reason logged.
    fn refused(&self, what: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::warn!(provider = %self.name(), error = %error, "{what}");
        ApiError::InvalidCredentials
    }

    /// 502 `Identity provider unavailable`, with the reason logged.
    fn unavailable(&self, what: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::warn!(provider = %self.name(), error = %error, "{what}");
        ApiError::ProviderUnavailable
    }
}

/// The client type [`CoreClient::from_provider_metadata`] makes.
type Client = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// An error with its causes, on one line (a refused connection says why only there).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
