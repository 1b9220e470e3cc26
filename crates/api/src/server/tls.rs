//! HTTPS served directly: the TLS handshake run on each accepted connection,
//! with a server configuration that can be replaced while serving, so a
//! renewed certificate is picked up without dropping a connection.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::Handshake;

/// The protocol versions offered: TLS 1.2 and 1.3 only (RFC 8996 deprecates
/// 1.0 and 1.1; OWASP ASVS 9.1.2).
pub const PROTOCOL_VERSIONS: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The cipher suites offered: TLS 1.3's, and for TLS 1.2 only ECDHE key
/// exchange (forward secrecy) with an AEAD cipher (AES-GCM or
/// ChaCha20-Poly1305): no CBC, no static RSA, no SHA-1 MACs.
const CIPHER_SUITES: &[SupportedCipherSuite] = &[
    ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ring::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// A certificate or key that cannot be served, with the variable naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    pub variable: &'static str,
    pub message: String,
}

impl TlsError {
    fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

impl std::error::Error for TlsError {}

/// The TLS handshake, with the certificate and key it serves. Clones share
/// the configuration: [`Tls::reload`] on one is seen by all, for new
/// connections only (an established one keeps the session it negotiated).
#[derive(Clone)]
pub struct Tls {
    current: Arc<RwLock<Arc<ServerConfig>>>,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the certificate chain and the private key (PEM) and builds the
    /// server configuration.
    pub fn from_files(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        let config = read_config(cert_file, key_file)?;
        Ok(Self {
            current: Arc::new(RwLock::new(Arc::new(config))),
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
        })
    }

    /// Reads both files again and serves them to new connections. When
    /// they cannot be served, the configuration in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(read_config(&self.cert_file, &self.key_file)?);
        // A poisoned lock still holds a complete configuration: replace it.
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = config;
        Ok(())
    }

    /// The configuration new connections get.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl<I> Handshake<I> for Tls
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Io = TlsStream<I>;
    const IS_TLS: bool = true;

    async fn handshake(&self, io: I) -> io::Result<TlsStream<I>> {
        TlsAcceptor::from(self.config()).accept(io).await
    }
}

/// The server configuration for a certificate chain and its key, read from
/// PEM files.
fn read_config(cert_file: &Path, key_file: &Path) -> Result<ServerConfig, TlsError> {
    let certs = read_certs(cert_file)?;
    let key = read_key(key_file)?;
    server_config(certs, key)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = path.display();
    let problem = |e| TlsError::new("TLS_CERT_FILE", format!("cannot read {shown}: {e}"));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(problem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(problem)?;
    if certs.is_empty() {
        return Err(TlsError::new(
            "TLS_CERT_FILE",
            format!("no PEM certificate in {shown}"),
        ));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let shown = path.display();
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            TlsError::new("TLS_KEY_FILE", format!("no PEM private key in {shown}"))
        }
        e => TlsError::new("TLS_KEY_FILE", format!("cannot read {shown}: {e}")),
    })
}

/// TLS 1.2 and 1.3 with forward-secret AEAD suites on *ring*, HTTP/2 or
/// HTTP/1.1 by ALPN (RFC 7301).
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, TlsError> {
    let provider = CryptoProvider {
        cipher_suites: CIPHER_SUITES.to_vec(),
        ..ring::default_provider()
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| TlsError::new("TLS_CERT_FILE", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::new(
                "TLS_KEY_FILE",
                "is not the private key of the certificate in TLS_CERT_FILE",
            ),
            e => TlsError::new("TLS_KEY_FILE", format!("cannot be used: {e}")),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Our order (strongest first, TLS 1.3's before 1.2's) decides, not the
    // client's: a client cannot steer the session to its weakest suite.
    config.ignore_client_order = true;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let key = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        server_config(vec![cert.der().clone()], key).unwrap()
    }

    #[test]
    fn only_tls_1_2_and_1_3_with_forward_secret_aead_suites() {
        let config = config();
        let mut versions: Vec<_> = config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| s.version().version)
            .collect();
        versions.dedup();
        assert_eq!(
            versions,
            [
                rustls::ProtocolVersion::TLSv1_3,
                rustls::ProtocolVersion::TLSv1_2
            ]
        );
        assert_eq!(
            PROTOCOL_VERSIONS
                .iter()
                .map(|v| v.version)
                .collect::<Vec<_>>(),
            [
                rustls::ProtocolVersion::TLSv1_3,
                rustls::ProtocolVersion::TLSv1_2
            ]
        );
        for suite in &config.crypto_provider().cipher_suites {
            let name = format!("{:?}", suite.suite());
            let is_tls13 = name.starts_with("TLS13_");
            let is_ecdhe_aead = name.starts_with("TLS_ECDHE_")
                && (name.contains("_GCM_") || name.contains("CHACHA20_POLY1305"));
            assert!(is_tls13 || is_ecdhe_aead, "{name}");
        }
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(config.ignore_client_order);
    }

    #[test]
    fn bad_files_name_their_variable() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = Tls::from_files(&missing, &empty).unwrap_err();
        assert_eq!(err.variable, "TLS_CERT_FILE");
        let err = Tls::from_files(&empty, &empty).unwrap_err();
        assert_eq!(err.variable, "TLS_CERT_FILE");
    }
}
