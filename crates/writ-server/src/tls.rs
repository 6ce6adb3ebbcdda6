//! HTTPS and WSS on the server's one port (`--tls-cert FILE --tls-key FILE`): rustls on
//! the ring provider, with the certificate chain and key read from PEM files.
//!
//! Each handshake runs on its connection's own task (on its worker, with `--http-threads`),
//! bounded by [`HANDSHAKE_MAX`], so a slow or silent client never holds up accepting the
//! others, and given up at shutdown; a connection counts against `connections_max` from
//! its TCP accept on, handshake included. Only HTTP/1.1 is offered (ALPN `http/1.1`), which
//! is what the server speaks, WebSocket upgrades included.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

use crate::listener::Connection;

/// Longest a TLS handshake may take before its connection is closed.
pub const HANDSHAKE_MAX: Duration = Duration::from_secs(10);

/// A server's TLS configuration: its certificate chain and private key. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

/// Why the certificate or key could not be used; each message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate file could not be read, or holds no PEM certificate.
    #[error("--tls-cert {}: {detail}", file.display())]
    Certificate {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The key file could not be read, or holds no PEM private key (PKCS#8, PKCS#1 or
    /// SEC1).
    #[error("--tls-key {}: {detail}", file.display())]
    Key {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// rustls refused the pair: the key does not match the certificate, or is of a kind
    /// it does not support.
    #[error("--tls-cert {} with --tls-key {}: {detail}", cert.display(), key.display())]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        detail: String,
    },
}

impl Tls {
    /// Reads the certificate chain (the server's certificate first, then intermediates) and
    /// the private key from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_error = |detail: String| TlsError::Certificate {
            file: cert.to_owned(),
            detail,
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| cert_error(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_error(e.to_string()))?;
        if chain.is_empty() {
            return Err(cert_error("no PEM certificate in the file".to_owned()));
        }
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
            file: key.to_owned(),
            detail: match e {
                rustls_pki_types::pem::Error::NoItemsFound => {
                    "no PEM private key in the file".to_owned()
                }
                other => other.to_string(),
            },
        })?;
        Self::from_der(chain, private).map_err(|e| TlsError::Pair {
            cert: cert.to_owned(),
            key: key.to_owned(),
            detail: e.to_string(),
        })
    }

    /// A configuration from a certificate chain and a private key in DER.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, rustls::Error> {
        // ring, not aws-lc-rs: it builds without cmake and in a fraction of the time. rustls
        // 0.23.48 marks its provider deprecated because ring has no post-quantum key
        // exchange; the classical groups (X25519, P-256, P-384) are what it offers.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl Tls {
    /// The acceptor of this configuration's handshakes.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.config))
    }
}

/// The TLS handshake of an accepted connection, on the connection's own task, within
/// [`HANDSHAKE_MAX`]; `None` (the connection closed) when it fails or takes too long.
pub(crate) async fn handshake(
    acceptor: &TlsAcceptor,
    connection: Connection,
    address: SocketAddr,
) -> Option<TlsStream<Connection>> {
    match tokio::time::timeout(HANDSHAKE_MAX, acceptor.accept(connection)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%address, %error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%address, "TLS handshake took too long; closed");
            None
        }
    }
}
