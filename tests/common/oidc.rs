//! Sign-in with OpenID Connect: the provider of `tests/oidc/` (oidc-provider, and a
//! small issuer of bad ID tokens beside it) on 127.0.0.1, and a browser that goes
//! through a sign-in: it follows redirects by hand, keeps the provider's cookies and
//! posts the provider's login and consent forms.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use awc::http::header::HeaderMap;
use bytes::Bytes;
use serde_json::Value;

use super::server::REQUEST_TIMEOUT;
use super::services::free_port;
use super::TestServer;

/// How long the provider may take to say it is ready (Node.js loading oidc-provider).
const READY_WITHIN: Duration = Duration::from_secs(30);
/// Redirects and forms one sign-in may pass through at the provider.
const MAX_STEPS: usize = 12;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Whether the provider is installed (`need_node_packages` in `tests/services.sh`);
/// says loudly when it is not, for the test to skip.
pub fn provider_installed() -> bool {
    let installed = fixture_dir().join("node_modules/oidc-provider").is_dir();
    if !installed {
        eprintln!(
            "skipped: tests/oidc/node_modules is missing (run ./test.sh, or `npm ci` in tests/oidc)"
        );
    }
    installed
}

/// `tests/oidc/provider.mjs` running on a port of its own. It exits when dropped, or
/// when the test process ends (its standard input closes).
pub struct OidcProvider {
    port: u16,
    child: Option<Child>,
}

impl OidcProvider {
    /// The provider the tests that leave it as it is share (one per test process).
    pub fn shared() -> &'static OidcProvider {
        static SHARED: OnceLock<OidcProvider> = OnceLock::new();
        SHARED.get_or_init(OidcProvider::start)
    }

    /// A provider of the test's own, to stop or to rotate keys at.
    pub fn start() -> OidcProvider {
        let mut provider = OidcProvider {
            port: free_port(),
            child: None,
        };
        provider.start_again();
        provider
    }

    /// Starts it (again) on the same port, with new signing keys.
    pub fn start_again(&mut self) {
        let mut child = Command::new("node")
            .arg(fixture_dir().join("provider.mjs"))
            .env("PORT", self.port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn node tests/oidc/provider.mjs");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "ready" {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(READY_WITHIN).is_err() {
            let _ = child.kill();
            panic!("the OpenID Connect provider did not start within {READY_WITHIN:?}");
        }
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The certified provider's issuer.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The issuer of bad ID tokens.
    pub fn bad_issuer(&self) -> String {
        format!("{}/bad", self.issuer())
    }

    /// `[[auth.oidc]]` tables: `test` (the certified provider), `plain` (the same,
    /// with the email only from userinfo) and `bad`.
    pub fn config(&self) -> String {
        let table = |name: &str, issuer: &str| {
            format!(
                "[[auth.oidc]]\nname = \"{name}\"\nlabel = \"Test {name}\"\nissuer = \"{issuer}\"\n\
                 client_id = \"tidings-test\"\nclient_secret = \"tidings-test-secret\"\n\
                 scopes = [\"openid\", \"email\"]\n"
            )
        };
        let plain = format!("{}/plain", self.issuer());
        table("test", &self.issuer()) + &table("plain", &plain) + &table("bad", &self.bad_issuer())
    }

    /// Replaces the provider's signing key; the new key's id.
    pub async fn rotate_keys(&self) -> String {
        let mut browser = Browser::new();
        let answer = browser
            .post_form(&format!("{}/admin/rotate", self.issuer()), &[])
            .await;
        assert_eq!(answer.status, 200, "rotating the provider's keys");
        answer.json()["kid"].as_str().unwrap().to_string()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One answer as a browser sees it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn location(&self) -> Option<String> {
        self.header("location")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        (self.headers.get(name)).map(|v| v.to_str().unwrap().to_string())
    }

    pub fn set_cookies(&self) -> Vec<String> {
        (self.headers.get_all("set-cookie"))
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `(status, JSON body)`, as the account helpers compare answers.
    pub fn reply(&self) -> (u16, Value) {
        (self.status, self.json())
    }
}

/// A browser: redirects are followed by hand, cookies kept by name (one site).
pub struct Browser {
    client: awc::Client,
    cookies: HashMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        let client = awc::Client::builder()
            .disable_redirects()
            .timeout(REQUEST_TIMEOUT)
            .finish();
        Browser {
            client,
            cookies: HashMap::new(),
        }
    }

    pub async fn get(&mut self, url: &str) -> Answer {
        let request = self.with_cookies(self.client.get(url));
        let response = request.send().await;
        self.read(url, response).await
    }

    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        let request = self.with_cookies(self.client.post(url));
        let response = request.send_form(&form).await;
        self.read(url, response).await
    }

    fn with_cookies(&self, request: awc::ClientRequest) -> awc::ClientRequest {
        if self.cookies.is_empty() {
            return request;
        }
        let jar: Vec<String> = (self.cookies.iter())
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        request.insert_header(("Cookie", jar.join("; ")))
    }

    async fn read(
        &mut self,
        url: &str,
        response: Result<awc::ClientResponse, awc::error::SendRequestError>,
    ) -> Answer {
        let mut response = response.unwrap_or_else(|e| panic!("{url}: {e}"));
        let body = response
            .body()
            .limit(1 << 20)
            .await
            .unwrap_or_else(|e| panic!("{url}: body: {e}"));
        let answer = Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body,
        };
        for cookie in answer.set_cookies() {
            let pair = cookie.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let expired =
                cookie.to_ascii_lowercase().contains("max-age=0") || cookie.contains("1970");
            match value.is_empty() || expired {
                true => self.cookies.remove(name.trim()),
                false => self.cookies.insert(name.trim().into(), value.into()),
            };
        }
        answer
    }

    /// Goes through the provider from `url` (its authorization URL) as the user
    /// `login`: redirects followed, the login form and the consent form posted, until
    /// the provider sends the browser back to a tidings callback: that URL.
    pub async fn through_provider(&mut self, url: &str, login: &str) -> String {
        let origin = origin_of(url);
        let mut url = url.to_string();
        for _ in 0..MAX_STEPS {
            let answer = self.get(&url).await;
            let mut next = answer.location();
            if next.is_none() && answer.status == 200 {
                let page = String::from_utf8_lossy(&answer.body).to_string();
                let action = form_action(&page)
                    .unwrap_or_else(|| panic!("{url}: no form on the page:\n{page}"));
                let form: Vec<(&str, &str)> = match page.contains("name=\"login\"") {
                    true => vec![("prompt", "login"), ("login", login), ("password", "any")],
                    false => vec![("prompt", "consent")],
                };
                let posted = self.post_form(&absolute(&origin, &action), &form).await;
                next = posted.location();
                assert!(
                    next.is_some(),
                    "{action}: {} {:?}",
                    posted.status,
                    posted.body
                );
            }
            let next = next.unwrap_or_else(|| {
                panic!(
                    "{url}: {} without a redirect: {:?}",
                    answer.status, answer.body
                )
            });
            let next = absolute(&origin, &next);
            if next.contains("/callback?") {
                return next;
            }
            url = next;
        }
        panic!("the provider did not send the browser back within {MAX_STEPS} steps");
    }
}

/// Starts a sign-in at `server` (`path`: `/auth/test`, maybe with a query) and returns
/// the provider URL tidings redirects to.
pub async fn start_sign_in(server: &TestServer, path: &str) -> String {
    let answer = Browser::new().get(&server.url(path)).await;
    assert_eq!(answer.status, 302, "{path}: {:?}", answer.body);
    answer.location().expect("a Location")
}

/// The callback URL of `callback`, sent to `server` instead (another node).
pub fn on_server(server: &TestServer, callback: &str) -> String {
    let path = &callback[origin_of(callback).len()..];
    server.url(path)
}

/// A whole sign-in at `server`'s provider `name` as `login`: the callback's answer.
pub async fn sign_in(server: &TestServer, name: &str, login: &str) -> Answer {
    let authorize = start_sign_in(server, &format!("/auth/{name}")).await;
    let mut browser = Browser::new();
    let callback = browser.through_provider(&authorize, login).await;
    browser.get(&callback).await
}

/// Makes every sign-in in progress at `server` expired (ten minutes are not waited for).
pub fn expire_sign_ins(server: &TestServer) {
    use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
    let url = server.database_url();
    let sql = diesel::sql_query("UPDATE oidc_logins SET expires_at = 0");
    let updated = match url.starts_with("postgres") {
        true => sql.execute(&mut PgConnection::establish(url).unwrap()),
        false => sql.execute(&mut SqliteConnection::establish(url).unwrap()),
    };
    assert!(updated.unwrap() > 0, "no sign-in in progress to expire");
}

/// The query parameter `name` of `url`, decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).to_string()
}

fn origin_of(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    url[..end].to_string()
}

fn absolute(origin: &str, url: &str) -> String {
    match url.starts_with('/') {
        true => format!("{origin}{url}"),
        false => url.to_string(),
    }
}

fn form_action(page: &str) -> Option<String> {
    let form = &page[page.find("<form")?..];
    let start = form.find("action=\"")? + "action=\"".len();
    let end = start + form[start..].find('"')?;
    Some(form[start..end].replace("&amp;", "&"))
}
