//! HTTPS for the tests: a throwaway certificate for `127.0.0.1` and `localhost`, made
//! once per test program; a server that serves it on `listen_tls`; and clients that
//! trust that certificate and nothing else.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use awc::http::Method;
use bytes::Bytes;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use super::server::{client, REQUEST_TIMEOUT};
use super::{eventually_blocking, TestServer, WAIT};

/// A self-signed certificate and its key, as PEM and as the DER a client trusts.
pub struct Certificate {
    pub cert_pem: String,
    pub key_pem: String,
    der: CertificateDer<'static>,
}

/// The test program's certificate (made on first use).
pub fn certificate() -> &'static Certificate {
    static MADE: OnceLock<Certificate> = OnceLock::new();
    MADE.get_or_init(|| {
        let names = ["127.0.0.1".to_string(), "localhost".to_string()];
        let made = rcgen::generate_simple_self_signed(names).expect("make a certificate");
        Certificate {
            cert_pem: made.cert.pem(),
            key_pem: made.signing_key.serialize_pem(),
            der: made.cert.der().clone(),
        }
    })
}

/// Roots that hold only [`certificate`].
pub fn roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots
        .add(certificate().der.clone())
        .expect("trust the test certificate");
    roots
}

/// Client settings that trust only [`certificate`]; ring, as the server uses.
pub fn client_config() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots())
        .with_no_client_auth();
    Arc::new(config)
}

/// An HTTP client for `https://` and `wss://` URLs that trusts only [`certificate`].
pub fn tls_client() -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().limit(0).rustls_0_23(client_config()))
        .timeout(REQUEST_TIMEOUT)
        .finish()
}

/// The client for `url`: [`tls_client`] for `https://` and `wss://`, else the plain one.
pub fn client_for(url: &str) -> awc::Client {
    match url.starts_with("https://") || url.starts_with("wss://") {
        true => tls_client(),
        false => client(),
    }
}

/// A [`TestServer`] that also serves HTTPS, on a port of its own.
pub struct TlsServer {
    server: TestServer,
    /// `127.0.0.1:PORT` of the HTTPS listener.
    pub https_addr: String,
    /// Holds the certificate and key files.
    _files: tempfile::TempDir,
}

impl TlsServer {
    /// Starts with `listen_tls` on a free port and [`certificate`]; `extra_toml` as
    /// for [`TestServer::start`].
    pub fn start(extra_toml: &str) -> TlsServer {
        let files = tempfile::Builder::new()
            .prefix("tidings-tls-")
            .tempdir()
            .expect("create temp dir");
        let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
        std::fs::write(&cert, &certificate().cert_pem).expect("write certificate");
        std::fs::write(&key, &certificate().key_pem).expect("write key");
        // Top-level keys go before any section of `extra_toml`.
        let toml = format!(
            "listen_tls = \"127.0.0.1:0\"\ntls_cert = {:?}\ntls_key = {:?}\n{extra_toml}",
            cert.display().to_string(),
            key.display().to_string(),
        );
        let server = TestServer::start(&toml);
        let https_addr = eventually_blocking(WAIT, "the HTTPS address in the log", || {
            https_addr(&server.log()).ok_or("not logged yet")
        });
        TlsServer {
            server,
            https_addr,
            _files: files,
        }
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.https_addr)
    }

    /// `wss://127.0.0.1:PORT{path}`.
    pub fn wss_url(&self, path: &str) -> String {
        format!("wss://{}{path}", self.https_addr)
    }

    /// Any request over HTTPS: `(status, body)`.
    pub async fn https(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> (u16, Bytes) {
        let method = Method::from_bytes(method.as_bytes()).expect("valid method");
        let mut request = tls_client().request(method, self.https_url(path));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = request
            .send_body(body.into())
            .await
            .unwrap_or_else(|e| panic!("HTTPS {path}: {e}"));
        let body = response
            .body()
            .await
            .unwrap_or_else(|e| panic!("HTTPS {path}: reading the body: {e}"));
        (response.status().as_u16(), body)
    }

    /// Publishes `body` to `topic` over HTTPS with the publisher's credential:
    /// `(status, body)`.
    pub async fn https_publish(&self, topic: &str, body: &str) -> (u16, Bytes) {
        let headers: Vec<(&str, &str)> = (self.publish_headers.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.https("POST", &format!("/{topic}"), &headers, body.to_string())
            .await
    }
}

impl Deref for TlsServer {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl std::ops::DerefMut for TlsServer {
    fn deref_mut(&mut self) -> &mut TestServer {
        &mut self.server
    }
}

/// The address in the log's `serving HTTPS addr=…` line.
fn https_addr(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("serving HTTPS"))?;
    let addr = line.split("addr=").nth(1)?.split_whitespace().next()?;
    Some(addr.trim_matches('"').to_string())
}
