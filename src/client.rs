//! `tidings publish` and `tidings subscribe`: a small command-line client for a
//! running server.

use awc::Client;
use futures_util::StreamExt;

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
        .map_err(|e| format!("cannot reach {}: {e}", target.server))?;
    let body = res
        .body()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    let text = String::from_utf8_lossy(&body);
    if !res.status().is_success() {
        return Err(format!("{}: {}", res.status(), text.trim()));
    }
    println!("{}", text.trim());
    Ok(())
}

/// Prints every message of `topics` (one JSON object a line) until the stream ends.
pub async fn subscribe(
    target: &Target,
    topics: &str,
    since: Option<&str>,
    poll: bool,
) -> Result<(), String> {
    let client = Client::builder().disable_timeout().finish();
    let mut query = Vec::new();
    if let Some(since) = since {
        query.push(format!("since={since}"));
    }
    if poll {
        query.push("poll=1".to_string());
    }
    let path = format!("/{topics}/json?{}", query.join("&"));
    let mut res = target
        .request(&client, awc::http::Method::GET, &path)
        .send()
        .await
        .map_err(|e| format!("cannot reach {}: {e}", target.server))?;
    if !res.status().is_success() {
        let body = res.body().await.unwrap_or_default();
        return Err(format!(
            "{}: {}",
            res.status(),
            String::from_utf8_lossy(&body).trim()
        ));
    }
    let mut pending = Vec::new();
    while let Some(chunk) = res.next().await {
        let chunk = chunk.map_err(|e| format!("stream ended: {e}"))?;
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            if line.contains("\"event\":\"message\"") {
                println!("{}", line.trim_end());
            }
        }
    }
    Ok(())
}
