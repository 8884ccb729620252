//! `tidings publish` and `tidings subscribe`: a small command-line client for a
//! running server.

mod settings;
mod subscribe;

pub use settings::Given;
pub use subscribe::{subscribe, Subscription};

use awc::Client;

/// Where the server is and how to authenticate.
pub struct Target {
    pub server: String,
    pub api_key: Option<String>,
    pub token: Option<String>,
}

impl Target {
    fn request(
        &self,
        client: &Client,
        method: awc::http::Method,
        path: &str,
    ) -> awc::ClientRequest {
        let url = format!("{}{}", self.server.trim_end_matches('/'), path);
        let mut req = client.request(method, url);
        if let Some(key) = &self.api_key {
            req = req.insert_header(("X-API-Key", key.as_str()));
        }
        if let Some(token) = &self.token {
            let header = if token.starts_with("tk_") {
                ("X-Topic-Token", token.clone())
            } else {
                ("Authorization", format!("Bearer {token}"))
            };
            req = req.insert_header(header);
        }
        req
    }

    /// Why a request never got an answer.
    fn unreachable(&self, error: impl std::fmt::Display) -> String {
        format!("cannot reach {}: {error}", self.server)
    }
}

/// A refusal as the user sees it: the status and the server's answer.
fn refusal(status: awc::http::StatusCode, body: &[u8]) -> String {
    format!("{status}: {}", String::from_utf8_lossy(body).trim())
}

/// What to publish.
pub struct Publication {
    pub topic: String,
    pub message: String,
    pub title: Option<String>,
    pub priority: Option<String>,
    pub tags: Option<String>,
}

/// Publishes one message and prints the stored message object.
pub async fn publish(target: &Target, publication: Publication) -> Result<(), String> {
    let client = Client::default();
    let mut req = target.request(
        &client,
        awc::http::Method::POST,
        &format!("/{}", publication.topic),
    );
    for (name, value) in [
        ("X-Title", publication.title),
        ("X-Priority", publication.priority),
        ("X-Tags", publication.tags),
    ] {
        if let Some(value) = value {
            req = req.insert_header((name, value));
        }
    }
    let mut res = req
        .send_body(publication.message)
        .await
        .map_err(|e| target.unreachable(e))?;
    let body = res
        .body()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    if !res.status().is_success() {
        return Err(refusal(res.status(), &body));
    }
    println!("{}", String::from_utf8_lossy(&body).trim());
    Ok(())
}
