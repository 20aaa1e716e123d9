//! # TLS: encrypted, verified connections (rustls)
//!
//! `--tls-cert`, `--tls-key`: this process's certificate chain and private
//! key (PEM). A driver or executor with them serves only TLS, and presents
//! the same certificate as a client certificate when it connects to other
//! processes (mutual TLS). `--tls-ca`: the certificate authority (PEM) that
//! signed the certificates of the processes this one connects to; every
//! connection verifies its peer against it and the host name (or IP) it
//! dialled. `--tls-client-ca`: on a server, require clients to present a
//! certificate signed by this CA (mutual TLS).
//!
//! With TLS on, addresses without a scheme (those executors register with)
//! are dialled with `https://`; an explicit `http://` address stays
//! plaintext, and a TLS server answers a plaintext client with a clear
//! `Unavailable` error instead of a broken connection
//! ([`crate::security::serve`]).
//!
//! Certificates must name the address other processes dial: the driver's
//! host in the masters' URLs, each executor's advertised host (DNS or IP
//! subject alternative names; one certificate may name every host).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::error::DataFusionError;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig, server::WebPkiClientVerifier};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where a process's TLS files are (all PEM).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// This process's certificate chain.
    pub cert: Option<PathBuf>,
    /// This process's private key.
    pub key: Option<PathBuf>,
    /// The CA that signed the certificates of the processes this one connects to.
    pub ca: Option<PathBuf>,
    /// Servers require client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsOptions {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Loaded TLS settings: how to serve and how to connect.
#[derive(Clone)]
pub struct Tls {
    /// Present when this process has a certificate: it serves TLS.
    pub server: Option<Arc<ServerConfig>>,
    /// How to connect to `https://` peers.
    pub client: ClientTlsConfig,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("serves_tls", &self.server.is_some())
            .finish_non_exhaustive()
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, DataFusionError> {
    std::fs::read(path).map_err(|e| {
        DataFusionError::Configuration(format!("cannot read the {what} {}: {e}", path.display()))
    })
}

fn certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, DataFusionError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            DataFusionError::Configuration(format!(
                "invalid PEM certificate in {}: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(DataFusionError::Configuration(format!(
            "no PEM certificate in {}",
            path.display()
        )));
    }
    Ok(certs)
}

fn roots(path: &Path, what: &str) -> Result<(Vec<u8>, RootCertStore), DataFusionError> {
    let pem = read(path, what)?;
    let mut store = RootCertStore::empty();
    for cert in certificates(&pem, path)? {
        store.add(cert).map_err(|e| {
            DataFusionError::Configuration(format!(
                "invalid CA certificate in {}: {e}",
                path.display()
            ))
        })?;
    }
    Ok((pem, store))
}

fn config_error(e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Configuration(format!("invalid TLS configuration: {e}"))
}

impl Tls {
    /// Loads the files of `options`; `None` when no TLS option is given.
    pub fn load(options: &TlsOptions) -> Result<Option<Self>, DataFusionError> {
        if options.is_empty() {
            return Ok(None);
        }
        let Some(ca) = &options.ca else {
            return Err(DataFusionError::Configuration(
                "TLS needs --tls-ca: the certificate authority that signed the certificates of \
                 the processes this one connects to (drivers and executors connect to each other)"
                    .into(),
            ));
        };
        let (ca_pem, _) = roots(ca, "TLS CA certificate")?;
        let mut client = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
        let server = match (&options.cert, &options.key) {
            (None, None) => {
                if options.client_ca.is_some() {
                    return Err(DataFusionError::Configuration(
                        "--tls-client-ca needs --tls-cert and --tls-key: only a TLS server can \
                         require client certificates"
                            .into(),
                    ));
                }
                None
            }
            (Some(cert_path), Some(key_path)) => {
                let cert_pem = read(cert_path, "TLS certificate")?;
                let key_pem = read(key_path, "TLS private key")?;
                let certs = certificates(&cert_pem, cert_path)?;
                let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                    DataFusionError::Configuration(format!(
                        "no usable PEM private key in {}: {e}",
                        key_path.display()
                    ))
                })?;
                client = client.identity(Identity::from_pem(cert_pem, key_pem));
                Some(Arc::new(server_config(
                    certs,
                    key,
                    options.client_ca.as_deref(),
                )?))
            }
            _ => {
                return Err(DataFusionError::Configuration(
                    "--tls-cert and --tls-key go together".into(),
                ));
            }
        };
        Ok(Some(Self { server, client }))
    }
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, DataFusionError> {
    // ring, named explicitly: the process-wide default provider is ambiguous
    // when another crate of the build enables a second one.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(config_error)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let (_, store) = roots(path, "TLS client CA certificate")?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
                .build()
                .map_err(config_error)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        DataFusionError::Configuration(format!(
            "the TLS certificate and private key do not fit: {e}"
        ))
    })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}
