//! Web Push from the receiving end: a push endpoint on 127.0.0.1 that records each
//! push and answers with the statuses it is told, and a browser's keys, with which a
//! push is decrypted (RFC 8291) and its VAPID signature checked (RFC 8292).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One push as the endpoint received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

/// An "answer" that never comes: the push is received and the connection held.
pub const HANG: u16 = 0;

/// A stand-in for a browser's push service.
pub struct PushEndpoint {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
    task: actix_rt::task::JoinHandle<()>,
}

impl PushEndpoint {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Listens on `port` (0: any free one); answers 201 unless told otherwise.
    pub async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the push endpoint");
        let port = listener.local_addr().expect("its address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(VecDeque::new()));
        let (got, told) = (received.clone(), answers.clone());
        let task = actix_rt::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (got, told) = (got.clone(), told.clone());
                actix_rt::spawn(async move {
                    let _ = serve(stream, got, told).await;
                });
            }
        });
        Self {
            port,
            received,
            answers,
            task,
        }
    }

    /// The statuses of the next pushes, in order (then 201 again); [`HANG`] answers
    /// nothing.
    pub fn answer(&self, statuses: &[u16]) {
        self.answers.lock().unwrap().extend(statuses);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// A push URL on this endpoint.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/push/{name}", self.port)
    }

    /// Stops listening (the port is free again).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Reads one request (head and `Content-Length` body), records it and answers.
async fn serve(
    mut stream: TcpStream,
    got: Arc<Mutex<Vec<Received>>>,
    told: Arc<Mutex<VecDeque<u16>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or_default()
        .to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..].to_vec();
    let status = told.lock().unwrap().pop_front().unwrap_or(201);
    got.lock().unwrap().push(Received {
        path,
        headers,
        body,
        at: Instant::now(),
    });
    if status == HANG {
        actix_rt::time::sleep(std::time::Duration::from_secs(60)).await;
        return Ok(());
    }
    let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await
}

/// A browser's side of a push subscription: its key pair and auth secret.
pub struct BrowserKeys {
    components: ece::EcKeyComponents,
    auth: Vec<u8>,
}

impl BrowserKeys {
    pub fn new() -> Self {
        let (pair, auth) = ece::generate_keypair_and_auth_secret().expect("browser keys");
        Self {
            components: pair.raw_components().expect("key components"),
            auth: auth.to_vec(),
        }
    }

    /// Keys a page made with WebCrypto: the private scalar `d` and the public point,
    /// as JWK and raw export give them, and the auth secret, all base64url.
    pub fn from_page(d: &str, p256dh: &str, auth: &str) -> Self {
        let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).expect("base64url");
        Self {
            components: ece::EcKeyComponents::new(decode(d), decode(p256dh)),
            auth: decode(auth),
        }
    }

    /// `PushSubscription.keys`, as the browser gives them.
    pub fn json(&self) -> Value {
        serde_json::json!({
            "p256dh": URL_SAFE_NO_PAD.encode(self.components.public_key()),
            "auth": URL_SAFE_NO_PAD.encode(&self.auth),
        })
    }

    /// The push's plaintext (RFC 8291, `aes128gcm`), read as JSON.
    pub fn decrypt(&self, push: &Received) -> Value {
        assert_eq!(
            push.headers.get("content-encoding").map(String::as_str),
            Some("aes128gcm")
        );
        let plain = ece::decrypt(&self.components, &self.auth, &push.body).expect("decrypts");
        serde_json::from_slice(&plain).expect("the plaintext is JSON")
    }
}

/// Checks `Authorization: vapid t=<JWT>, k=<key>`: `k` is `public_key`, the JWT is
/// ES256-signed by it, `aud` is `audience`, `exp` at most 24 h ahead, `sub` given.
pub fn check_vapid(push: &Received, public_key: &str, audience: &str) {
    let header = push.headers.get("authorization").expect("Authorization");
    let rest = header.strip_prefix("vapid ").expect("the vapid scheme");
    let mut jwt = None;
    let mut key = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => jwt = Some(v.to_string()),
            Some(("k", v)) => key = Some(v.to_string()),
            _ => {}
        }
    }
    let (jwt, key) = (jwt.expect("t="), key.expect("k="));
    assert_eq!(key, public_key, "k= is the server's VAPID key");
    let (signed, signature) = jwt.rsplit_once('.').expect("a signed JWT");
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).expect("base64url");
    let verifier = VerifyingKey::from_sec1_bytes(&decode(&key)).expect("a P-256 key");
    let signature = Signature::from_slice(&decode(signature)).expect("an ES256 signature");
    verifier
        .verify(signed.as_bytes(), &signature)
        .expect("the VAPID signature verifies");
    let (head, claims) = signed.split_once('.').expect("header.claims");
    let head: Value = serde_json::from_slice(&decode(head)).unwrap();
    assert_eq!(head["alg"], "ES256");
    let claims: Value = serde_json::from_slice(&decode(claims)).unwrap();
    assert_eq!(claims["aud"], audience);
    let exp = claims["exp"].as_i64().expect("exp");
    let now = chrono::Utc::now().timestamp();
    assert!(
        exp > now && exp <= now + 24 * 3600,
        "exp within 24 h: {claims}"
    );
    assert!(!claims["sub"].as_str().unwrap_or_default().is_empty());
}
