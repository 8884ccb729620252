//! HTTPS on a listener of its own (`listen_tls`): the certificate chain and key, read
//! once at start-up, and each new connection's handshake, bounded in time.

use std::path::Path;
use std::sync::Arc;

use actix_rt::net::TcpStream;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
pub use tokio_rustls::TlsAcceptor;

/// TLS 1.3 and 1.2, ALPN `http/1.1`, with the chain in `cert` and the key in `key`
/// (PEM). An error is one line naming the file.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let chain = read_pem("tls_cert", cert, "certificate", |pem| {
        let chain = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>()?;
        match chain.is_empty() {
            true => Err(pem::Error::NoItemsFound),
            false => Ok(chain),
        }
    })?;
    let private = read_pem(
        "tls_key",
        key,
        "private key (PKCS#8, RSA or EC)",
        PrivateKeyDer::from_pem_slice,
    )?;
    // ring explicitly: the process holds no other provider to choose by default.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            let (key, cert) = (key.display(), cert.display());
            format!("tls_key {key} does not serve with tls_cert {cert}: {e}")
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reads the PEM file of `setting` and parses it, saying which `kind` of item was
/// looked for when none is there.
fn read_pem<T>(
    setting: &str,
    path: &Path,
    kind: &str,
    parse: impl FnOnce(&[u8]) -> Result<T, pem::Error>,
) -> Result<T, String> {
    let file = path.display();
    let text = std::fs::read(path).map_err(|e| format!("cannot read {setting} {file}: {e}"))?;
    parse(&text).map_err(|e| match e {
        pem::Error::NoItemsFound => format!("{setting} {file}: no PEM {kind} in it"),
        pem::Error::Base64Decode(why) => format!("{setting} {file}: not valid PEM: {why}"),
        _ => format!("{setting} {file}: not valid PEM"),
    })
}

/// The server's side of the handshake, over by `deadline`; `None` when the client
/// failed it or was too slow (its connection is then dropped).
pub async fn accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    deadline: Instant,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}
