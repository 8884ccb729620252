//! The API described for machines: `GET /api/openapi.json`, the OpenAPI 3.1 document
//! derived from the handlers' `#[utoipa::path]` annotations and types, and `GET /`,
//! which says what this server is and where the document and the web app live.
//!
//! What every operation has in common is added here once rather than on each handler:
//! the credentials it takes (by its tag), the errors any request can get, and the four
//! transports of a subscription as paths of their own.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::{accounts, client_auth, health, keys, publish, sign_in, subscribe, topics, webpush};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";
/// Where the web app is served.
const APP_PATH: &str = "/app/";

/// A topic name in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only described: the handlers read the path themselves
pub struct TopicPath {
    /// 1-64 letters, digits, `_` or `-`; not a reserved name (`api`, `auth`, …).
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    topic: String,
}

/// One or several comma-separated topic names in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only described: the handlers read the path themselves
pub struct TopicsPath {
    /// Topic names, comma-separated (`a,b`).
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}(,[A-Za-z0-9_-]{1,64})*$")]
    topics: String,
}

/// Where a subscription or a history starts.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // only described: the handlers read the query themselves
pub struct SinceQuery {
    /// `all`, `latest`, `none`, a duration (`30s`, `10m`, `2h`, `7d`), a unix time or a
    /// message id: the stored messages after it first (empty: `none`). Default: `all`
    /// for a history or `poll=1`, else none (or `Last-Event-ID`).
    #[param(pattern = "^\\s*(all|latest|none|[0-9]+[smhd]?|[A-Za-z0-9]{12})?\\s*$")]
    since: Option<String>,
}

/// The document: every route's operation, and what `Refinements` adds to them.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tidings",
        description = "A self-hosted realtime notification broker: publish over HTTP, subscribe over SSE, WebSocket, JSON or raw streams. Every error is `{\"detail\": \"…\"}`."
    ),
    paths(
        index, document, health::health, health::metrics,
        accounts::register, accounts::login, accounts::refresh, accounts::logout, accounts::me,
        sign_in::providers, sign_in::start, sign_in::callback,
        keys::create, keys::list, keys::regenerate, keys::revoke,
        topics::create, topics::list, topics::get, topics::update, topics::delete,
        topics::create_token, topics::list_tokens, topics::revoke_token,
        client_auth::show, client_auth::update, client_auth::new_signing_key,
        client_auth::set_origins,
        webpush::key, webpush::create, webpush::list, webpush::delete,
        publish::publish, publish::publish_json,
        subscribe::subscribe, subscribe::may_subscribe, subscribe::history,
    ),
    modifiers(&Refinements),
    tags(
        (name = "sign-in", description = "Registering, logging in and refreshing: no credential needed"),
        (name = "accounts", description = "The signed-in account"),
        (name = "keys", description = "API keys (`noti_…`)"),
        (name = "topics", description = "Topics and their settings"),
        (name = "tokens", description = "Topic access tokens (`tk_…`)"),
        (name = "client-auth", description = "Browser access: client key, signing key, allowed origins"),
        (name = "webpush", description = "Web Push subscriptions of the account"),
        (name = "webpush-key", description = "The VAPID public key: no credential needed"),
        (name = "publish", description = "Publishing messages"),
        (name = "subscribe", description = "Streams, history and ntfy's access check"),
        (name = "operations", description = "Probes and documents"),
    )
)]
pub struct ApiDoc;

/// The document as served: built once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .expect("the OpenAPI document serializes")
});

/// `GET /api/openapi.json`: a static document, so it is never rate-limited (see
/// `http::unlimited`).
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = serde_json::Value)))]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}

/// The route of the four transports, which the document lists as four paths.
const TRANSPORT_ROUTE: &str = "/{topics}/{transport}";

/// The methods each route answers (`GET, POST`), by its pattern, for the `Allow`
/// header of a 405: read from the document, so the two cannot differ.
static ALLOWED: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    let mut doc = ApiDoc::openapi();
    let mut allowed: HashMap<String, String> = doc
        .paths
        .paths
        .iter_mut()
        .map(|(path, item)| {
            let methods: Vec<String> = operations(item).map(|(m, _)| m.to_uppercase()).collect();
            (path.clone(), methods.join(", "))
        })
        .collect();
    allowed.insert(TRANSPORT_ROUTE.to_string(), "GET".to_string());
    allowed
});

/// The methods the route of `pattern` answers, if it is one of the API's.
pub fn allowed_methods(pattern: &str) -> Option<&'static str> {
    ALLOWED.get(pattern).map(String::as_str)
}

/// What `GET /` answers.
#[derive(Serialize, ToSchema)]
pub struct Index {
    /// `tidings`.
    name: &'static str,
    version: &'static str,
    /// Where the web app is.
    app: &'static str,
    /// Where this document is.
    openapi: &'static str,
}

/// `GET /`: the server's name and version, and where its documents are.
#[utoipa::path(get, path = "/", tag = "operations",
    responses((status = 200, description = "What this server is", body = Index)))]
pub async fn index() -> HttpResponse {
    HttpResponse::Ok().json(Index {
        name: "tidings",
        version: env!("CARGO_PKG_VERSION"),
        app: APP_PATH,
        openapi: DOCUMENT_PATH,
    })
}

/// What the document adds to the operations the handlers describe.
struct Refinements;

impl Modify for Refinements {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        split_transports(&mut doc.paths.paths);
        if let Some(components) = doc.components.as_mut() {
            for (name, scheme) in security_schemes() {
                components.add_security_scheme(name, scheme);
            }
        }
        let mut ids: HashMap<String, usize> = HashMap::new();
        for (path, item) in doc.paths.paths.iter_mut() {
            for (_, op) in operations(item) {
                let tag = op.tags.as_ref().and_then(|t| t.first()).cloned();
                let takes = tag.as_deref().map(credentials).unwrap_or_default();
                if !takes.is_empty() {
                    // A handler's own `security(())` adds "no credential" (a public
                    // topic's read) to those of its tag.
                    let own = op.security.take().unwrap_or_default();
                    op.security = Some(
                        own.into_iter()
                            .chain(takes.iter().map(|r| requirement(r)))
                            .collect(),
                    );
                }
                for (status, text) in common_errors(path, op, !takes.is_empty()) {
                    add_error(op, status, text);
                }
                if let Some(id) = &op.operation_id {
                    *ids.entry(id.clone()).or_default() += 1;
                }
            }
        }
        // One handler serving two methods (`POST` and `PUT /{topic}`) gives both the
        // same id: an id must name one operation.
        for item in doc.paths.paths.values_mut() {
            for (method, op) in operations(item) {
                if let Some(id) = op.operation_id.as_mut().filter(|id| ids[*id] > 1) {
                    *id = format!("{id}_{method}");
                }
            }
        }
    }
}

/// Each operation of a path, with its method's name.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
    ]
    .into_iter()
    .filter_map(|(method, op)| Some((method, op.as_mut()?)))
}

/// The subscription is one route, `/{topics}/{transport}`; the document lists each
/// transport as a path of its own, with its own answer.
fn split_transports(paths: &mut BTreeMap<String, PathItem>) {
    let Some(template) = paths.remove(TRANSPORT_ROUTE) else {
        return;
    };
    let transports = [
        ("sse", Some("text/event-stream"), "Server-Sent Events"),
        (
            "json",
            Some("application/x-ndjson"),
            "Newline-delimited JSON",
        ),
        ("raw", Some("text/plain"), "One line per message text"),
        ("ws", None, "WebSocket"),
    ];
    for (transport, content_type, summary) in transports {
        let mut item = template.clone();
        if let Some(op) = item.get.as_mut() {
            op.operation_id = Some(format!("subscribe_{transport}"));
            op.summary = Some(summary.to_string());
            let responses = &mut op.responses.responses;
            match content_type {
                Some(wanted) => {
                    responses.remove("101");
                    if let Some(RefOr::T(ok)) = responses.get_mut("200") {
                        ok.content.retain(|media, _| media == wanted);
                    }
                }
                None => {
                    responses.remove("200");
                }
            }
        }
        paths.insert(format!("/{{topics}}/{transport}"), item);
    }
}

/// The credentials the API takes, by security scheme name.
fn security_schemes() -> Vec<(&'static str, SecurityScheme)> {
    let header = |name: &str, about: &str| {
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, about)))
    };
    let query = |name: &str, about: &str| {
        SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(name, about)))
    };
    let http = |scheme, about: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(scheme)
                .description(Some(about))
                .build(),
        )
    };
    vec![
        ("bearer", http(HttpAuthScheme::Bearer, "An access JWT; also an API key (`noti_…`) or a topic token (`tk_…`), as ntfy's clients send them")),
        ("basic", http(HttpAuthScheme::Basic, "An email or username and the account's password (a login attempt), or any user name and an API key or topic token as the password")),
        ("api_key", header("X-API-Key", "An API key (`noti_…`)")),
        ("api_key_query", query("api_key", "An API key (`noti_…`)")),
        ("topic_token", header("X-Topic-Token", "A topic access token (`tk_…`)")),
        ("token_query", query("token", "A topic token (`tk_…`) or an access JWT")),
        ("auth_query", query("auth", "ntfy's form: the `Authorization` value (`Basic …` or `Bearer …`) in base64url")),
        ("client_key", header("X-Client-Key", "A browser client key (`pk_…`), with `X-User-Key` or `X-User-Id`")),
        ("user_key", header("X-User-Key", "An RS256 user key, with `X-Client-Key`")),
        ("user_id", header("X-User-Id", "A user id in development mode, with `X-Client-Key`")),
        ("client_key_query", query("client_key", "`X-Client-Key` as a query parameter")),
        ("user_key_query", query("user_key", "`X-User-Key` as a query parameter")),
        ("user_id_query", query("user_id", "`X-User-Id` as a query parameter")),
    ]
}

/// An account credential, in any of its forms.
const ACCOUNT: [&[&str]; 5] = [
    &["bearer"],
    &["api_key"],
    &["api_key_query"],
    &["basic"],
    &["auth_query"],
];
/// A topic access token.
const TOPIC_TOKEN: [&[&str]; 2] = [&["topic_token"], &["token_query"]];
/// A browser client: its client key with a user key or (development mode) a user id,
/// as headers or query parameters.
const BROWSER: [&[&str]; 4] = [
    &["client_key", "user_key"],
    &["client_key", "user_id"],
    &["client_key_query", "user_key_query"],
    &["client_key_query", "user_id_query"],
];
/// No credential: anyone, for a public topic.
const ANYONE: [&[&str]; 1] = [&[]];

/// The credentials an operation of this tag takes (none: it needs none).
fn credentials(tag: &str) -> Vec<&'static [&'static str]> {
    match tag {
        "accounts" | "keys" | "topics" | "tokens" | "client-auth" | "webpush" => ACCOUNT.to_vec(),
        "publish" => [&ACCOUNT[..], &TOPIC_TOKEN].concat(),
        "subscribe" => [&ANYONE[..], &ACCOUNT, &TOPIC_TOKEN, &BROWSER].concat(),
        _ => Vec::new(),
    }
}

/// A requirement that every scheme named be given together.
fn requirement(schemes: &[&str]) -> SecurityRequirement {
    schemes
        .iter()
        .fold(SecurityRequirement::default(), |r, scheme| {
            r.add(*scheme, Vec::<String>::new())
        })
}

/// The errors an operation can get besides its own: those of any request, those of a
/// request with a body, and those of one that needs a credential.
fn common_errors(path: &str, op: &Operation, credential: bool) -> Vec<(u16, &'static str)> {
    let mut errors = vec![
        (400, "A malformed request: `Malformed request head`, `Invalid query string: …`, `Header … is not valid UTF-8` and the others of the error table"),
        (408, "`Request timeout`: the head or the body did not arrive in time"),
        (414, "`URI too long`"),
        (431, "`Request header fields too large`"),
        (500, "`Internal server error`"),
        (503, "`Server is at its connection limit`"),
    ];
    if !super::unlimited(path) {
        errors.push((429, "`Rate limit exceeded`, with `Retry-After`, `X-RateLimit-Limit` and `X-RateLimit-Remaining`"));
    }
    if let Some(body) = &op.request_body {
        errors.push((413, "`Message too large`"));
        if body.content.contains_key("application/json") {
            errors.push((
                400,
                "`Expected Content-Type: application/json`, `Invalid JSON body: …`",
            ));
        }
    }
    if credential {
        errors.push((
            401,
            "`Not authenticated`, `Could not validate credentials`, `Token has expired`",
        ));
        errors.push((
            403,
            "`Insufficient permissions to access this topic`, `Origin not allowed`",
        ));
    }
    errors
}

/// Adds an error answer (`{"detail"}`) to an operation, or its text to the one it has.
fn add_error(op: &mut Operation, status: u16, text: &str) {
    let responses = &mut op.responses.responses;
    match responses.get_mut(&status.to_string()) {
        Some(RefOr::T(response)) => {
            response.description = format!("{}. Also: {text}", response.description);
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let mut response = Response::new(text);
            let body = Content::new(Some(Ref::from_schema_name("Detail")));
            response.content.insert("application/json".into(), body);
            responses.insert(status.to_string(), RefOr::T(response));
        }
    }
}
