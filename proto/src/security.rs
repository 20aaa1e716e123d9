//! # Security: what every connection of a process needs (Spark's SecurityManager)
//!
//! A [`Security`] holds a process's cluster secret ([`crate::auth`]) and
//! its TLS settings ([`crate::tls`]). Servers are started with [`serve`]
//! (the authentication layer around the whole server, TLS when configured)
//! and clients made with [`crate::driver_client`] / [`crate::executor_client`]
//! (a proof on every request, TLS for `https://`), so no connection of the
//! driver, an executor or a client is made any other way.
//!
//! [`check_listen`] is the rule that a driver or executor does not listen on
//! a non-loopback address without a secret unless told `--insecure`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use datafusion::error::DataFusionError;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tonic::Status;
use tonic::service::{InterceptorLayer, Routes};
use tonic::transport::Server;

use crate::auth::{ClientAuth, Secret, ServerAuth};
use crate::request_limits::RequestLimitLayer;
use crate::tls::{Tls, TlsOptions};

/// How long a new connection may take to send its first byte and finish
/// its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A process's secret and TLS settings. `Default` is neither: plaintext,
/// unauthenticated (only right on loopback, or with `--insecure`).
#[derive(Debug, Clone, Default)]
pub struct Security {
    pub secret: Option<Secret>,
    pub tls: Option<Arc<Tls>>,
}

impl Security {
    /// The secret from `secret_file` if given, else from `MINISPARK_SECRET`;
    /// TLS from `tls`.
    pub fn resolve(secret_file: Option<&Path>, tls: &TlsOptions) -> Result<Self, DataFusionError> {
        let secret = match secret_file {
            Some(path) => Some(Secret::from_file(path)?),
            None => Secret::from_env()?,
        };
        Ok(Self {
            secret,
            tls: Tls::load(tls)?.map(Arc::new),
        })
    }

    /// The secret of `MINISPARK_SECRET`, if set; no TLS.
    pub fn from_env() -> Result<Self, DataFusionError> {
        Self::resolve(None, &TlsOptions::default())
    }

    /// Authentication with `secret`, no TLS.
    pub fn with_secret(secret: Secret) -> Self {
        Self {
            secret: Some(secret),
            tls: None,
        }
    }

    /// True when this process serves TLS.
    pub fn serves_tls(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.server.is_some())
    }

    /// The scheme of this process's own URL.
    pub fn scheme(&self) -> &'static str {
        if self.serves_tls() { "https" } else { "http" }
    }

    /// The URL to dial `address` ("host:port" or a URL) with: bare
    /// addresses get `https://` when this process uses TLS.
    pub fn url(&self, address: &str) -> String {
        if address.starts_with("http://") || address.starts_with("https://") {
            address.to_string()
        } else if self.tls.is_some() {
            format!("https://{address}")
        } else {
            format!("http://{address}")
        }
    }

    /// The client-side interceptor adding proofs of the secret.
    pub fn client_auth(&self) -> ClientAuth {
        ClientAuth::new(self.secret.clone())
    }
}

/// Refuses to serve on a non-loopback address without a secret, unless
/// `insecure`. `what` names the process ("driver", "executor").
pub fn check_listen(
    address: SocketAddr,
    security: &Security,
    insecure: bool,
    what: &str,
) -> Result<(), DataFusionError> {
    if address.ip().is_loopback() || security.secret.is_some() || insecure {
        return Ok(());
    }
    Err(DataFusionError::Configuration(format!(
        "refusing to listen on {address} without a cluster secret: anyone who can reach that \
         address could submit jobs, launch tasks that read and write any file this {what} can, \
         and read or delete shuffle data. Give every process of the cluster the same secret \
         (--secret-file PATH or the MINISPARK_SECRET environment variable), or listen on a \
         loopback address (e.g. --listen 127.0.0.1:0), or pass --insecure on a network you trust"
    )))
}

/// Serves `routes` on `listener` until the listener fails: every request
/// passes the authentication layer first, then the per-RPC size limits of
/// [`crate::request_limits`]; with a certificate, connections
/// are TLS, and a plaintext client gets a clear `Unavailable` error instead
/// of a broken connection.
pub async fn serve(
    routes: Routes,
    listener: TcpListener,
    security: &Security,
) -> Result<(), tonic::transport::Error> {
    let auth = InterceptorLayer::new(ServerAuth::new(security.secret.clone()));
    let Some(server_tls) = security.tls.as_ref().and_then(|t| t.server.clone()) else {
        return Server::builder()
            .max_concurrent_streams(crate::limits::MAX_CONCURRENT_STREAMS)
            .layer(auth)
            .layer(RequestLimitLayer)
            .serve_with_incoming(
                routes,
                // No Nagle: small task and status messages must not wait for ACKs.
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            )
            .await;
    };
    let acceptor = TlsAcceptor::from(server_tls);
    let (tls_tx, tls_rx) = tokio::sync::mpsc::channel(64);
    let (plain_tx, plain_rx) = tokio::sync::mpsc::channel(16);
    let accept = async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tls_tx = tls_tx.clone();
            let plain_tx = plain_tx.clone();
            // Handshakes run apart, so a slow peer never holds up the next.
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
                    Ok(Ok(1)) => {}
                    _ => return,
                }
                // 0x16: a TLS handshake record. Anything else (an HTTP/2
                // preface starts with "PRI") is a plaintext client.
                if first[0] != 0x16 {
                    let _ = plain_tx.send(Ok::<_, std::io::Error>(stream)).await;
                    return;
                }
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = tls_tx.send(Ok::<_, std::io::Error>(tls)).await;
                    }
                    Ok(Err(e)) => tracing::warn!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
                }
            });
        }
    };
    let secure = Server::builder()
        .max_concurrent_streams(crate::limits::MAX_CONCURRENT_STREAMS)
        .layer(auth)
        .layer(RequestLimitLayer)
        .serve_with_incoming(
            routes.clone(),
            tokio_stream::wrappers::ReceiverStream::new(tls_rx),
        );
    let refuse = Server::builder()
        .max_concurrent_streams(crate::limits::MAX_CONCURRENT_STREAMS)
        .layer(InterceptorLayer::new(refuse_plaintext))
        .serve_with_incoming(
            routes,
            tokio_stream::wrappers::ReceiverStream::new(plain_rx),
        );
    tokio::select! {
        r = secure => r,
        r = refuse => r,
        () = accept => Ok(()),
    }
}

fn refuse_plaintext(request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
    let peer = request
        .remote_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "an unknown peer".into());
    tracing::warn!(%peer, "plaintext request to a TLS server refused");
    Err(Status::unavailable(
        "this minispark server accepts only TLS connections: use an https:// address \
         (with --tls-ca, the CA that signed the cluster's certificates)",
    ))
}
