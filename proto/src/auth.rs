//! # Cluster authentication: every RPC proves it knows the cluster secret
//!
//! A cluster has one shared secret (`--secret-file PATH` or the
//! `MINISPARK_SECRET` environment variable), known to the driver, every
//! executor and every client. Each gRPC request carries, in its
//! `x-minispark-auth` metadata entry, a proof that its sender knows it:
//!
//! ```text
//! v1.<unix-ms>.<nonce: 16 random bytes, hex>.<HMAC-SHA256(secret, "minispark-auth-v1\n<unix-ms>\n<nonce>"), hex>
//! ```
//!
//! Every server checks the proof in a tower layer ([`ServerAuth`], installed
//! by [`crate::security::serve`] around the whole server, so a service added
//! later is covered too) before the request reaches any service: the MAC is
//! compared in constant time (`ring::hmac::verify`), the timestamp must lie
//! within [`MAX_CLOCK_SKEW`] of the server's clock, and a nonce is accepted
//! once. A missing or wrong proof is refused with `Unauthenticated` and
//! logged with the peer's address and the reason, never with the secret or
//! the proof.
//!
//! ## Why an HMAC over a timestamp and a nonce, not the secret itself
//!
//! A bearer token (the secret in a header) is only safe on an encrypted
//! connection: anyone who sees one request of a plaintext cluster would own
//! the cluster from then on. The HMAC never puts the secret on the wire, so
//! it stays secret with TLS off too (a loopback `local[N]` cluster, or a
//! trusted network); the timestamp bounds how long a captured proof is good
//! for, and the replay cache makes it good for at most one request at the
//! server it was sent to. What it does not do: it does not protect the
//! request's body. On a network where someone can read or alter traffic,
//! turn TLS on as well (`--tls-*`, see [`crate::tls`]); with TLS the proof
//! travels encrypted and a captured proof cannot be replayed.
//!
//! Clocks of the cluster's hosts must agree within [`MAX_CLOCK_SKEW`] (as
//! for Kerberos); run NTP.
//!
//! Crypto is `ring`'s (HMAC-SHA256, constant-time verification, the OS
//! random generator): the same library rustls uses for TLS here, so
//! authentication adds no crate of its own.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use datafusion::error::DataFusionError;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The environment variable holding the cluster secret itself.
pub const SECRET_ENV: &str = "MINISPARK_SECRET";

/// The metadata entry carrying the proof.
pub const AUTH_METADATA: &str = "x-minispark-auth";

/// How far a proof's timestamp may be from the server's clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// A secret shorter than this is refused: it could be guessed.
pub const MIN_SECRET_BYTES: usize = 16;

const PROOF_VERSION: &str = "v1";
const NONCE_BYTES: usize = 16;

/// The cluster secret, as an HMAC key. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Secret {
    key: Arc<hmac::Key>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl Secret {
    /// A secret from its text; surrounding whitespace (a file's trailing
    /// newline) is not part of it. `origin` names where it came from, for
    /// errors.
    pub fn new(text: &[u8], origin: &str) -> Result<Self, DataFusionError> {
        let text = text.trim_ascii();
        if text.len() < MIN_SECRET_BYTES {
            return Err(DataFusionError::Configuration(format!(
                "the cluster secret from {origin} is {} bytes long; it must have at least \
                 {MIN_SECRET_BYTES} (generate one with `openssl rand -hex 32`)",
                text.len()
            )));
        }
        Ok(Self {
            key: Arc::new(hmac::Key::new(hmac::HMAC_SHA256, text)),
        })
    }

    /// Reads the secret from a file.
    pub fn from_file(path: &Path) -> Result<Self, DataFusionError> {
        let text = std::fs::read(path).map_err(|e| {
            DataFusionError::Configuration(format!(
                "cannot read the cluster secret file {}: {e}",
                path.display()
            ))
        })?;
        Self::new(&text, &format!("file {}", path.display()))
    }

    /// The secret in `MINISPARK_SECRET`, if set.
    pub fn from_env() -> Result<Option<Self>, DataFusionError> {
        match std::env::var_os(SECRET_ENV) {
            Some(v) if !v.is_empty() => {
                Self::new(v.as_encoded_bytes(), &format!("${SECRET_ENV}")).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// A fresh random secret and its text (64 hex digits), e.g. for the
    /// processes of an embedded cluster.
    pub fn random() -> Result<(Self, String), DataFusionError> {
        let mut bytes = [0u8; 32];
        random_fill(&mut bytes)?;
        let text = hex(&bytes);
        Ok((Self::new(text.as_bytes(), "a random generator")?, text))
    }

    fn mac(&self, millis: u64, nonce: &str) -> hmac::Tag {
        hmac::sign(&self.key, message(millis, nonce).as_bytes())
    }

    /// A proof for one request, made now.
    pub fn proof(&self) -> Result<String, DataFusionError> {
        let mut nonce = [0u8; NONCE_BYTES];
        random_fill(&mut nonce)?;
        let nonce = hex(&nonce);
        let millis = unix_millis();
        let mac = hex(self.mac(millis, &nonce).as_ref());
        Ok(format!("{PROOF_VERSION}.{millis}.{nonce}.{mac}"))
    }
}

fn message(millis: u64, nonce: &str) -> String {
    format!("minispark-auth-{PROOF_VERSION}\n{millis}\n{nonce}")
}

fn random_fill(bytes: &mut [u8]) -> Result<(), DataFusionError> {
    SystemRandom::new().fill(bytes).map_err(|_| {
        DataFusionError::Execution("the operating system's random generator failed".into())
    })
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// The client half: adds a fresh proof to every request (nothing when the
/// cluster has no secret).
#[derive(Clone, Debug, Default)]
pub struct ClientAuth {
    secret: Option<Secret>,
}

impl ClientAuth {
    pub fn new(secret: Option<Secret>) -> Self {
        Self { secret }
    }
}

impl Interceptor for ClientAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(secret) = &self.secret {
            let proof = secret
                .proof()
                .map_err(|e| Status::internal(format!("cannot make an auth proof: {e}")))?;
            let value = MetadataValue::try_from(proof)
                .map_err(|e| Status::internal(format!("invalid auth proof: {e}")))?;
            request.metadata_mut().insert(AUTH_METADATA, value);
        }
        Ok(request)
    }
}

/// Nonces of accepted proofs still inside the clock window (a proof older
/// than the window is refused anyway), with their timestamps.
#[derive(Debug, Default)]
struct ReplayCache {
    seen: HashMap<u128, u64>,
    /// When expired nonces were last swept out (unix ms).
    last_sweep: u64,
}

impl ReplayCache {
    /// Records `nonce`; false if it was seen before.
    fn insert(&mut self, nonce: u128, millis: u64, now: u64) -> bool {
        // At most one sweep a second: O(nonces) each, whatever the RPC rate.
        if now.saturating_sub(self.last_sweep) >= 1000 {
            let horizon = now.saturating_sub(MAX_CLOCK_SKEW.as_millis() as u64);
            self.seen.retain(|_, &mut t| t >= horizon);
            self.last_sweep = now;
        }
        self.seen.insert(nonce, millis).is_none()
    }
}

/// The server half: refuses every request without a valid, fresh proof.
/// Without a secret it lets everything through (an `--insecure` or
/// loopback-only process).
#[derive(Clone, Debug)]
pub struct ServerAuth {
    secret: Option<Secret>,
    replays: Arc<Mutex<ReplayCache>>,
}

impl ServerAuth {
    pub fn new(secret: Option<Secret>) -> Self {
        Self {
            secret,
            replays: Arc::default(),
        }
    }

    /// Checks the proof of `request`; the error says why it was refused.
    fn check(&self, secret: &Secret, request: &Request<()>) -> Result<(), &'static str> {
        let Some(value) = request.metadata().get(AUTH_METADATA) else {
            return Err("no proof of the cluster secret (the client has no secret configured)");
        };
        let malformed = "malformed proof of the cluster secret";
        let value = value.to_str().map_err(|_| malformed)?;
        let mut parts = value.split('.');
        let (Some(version), Some(millis), Some(nonce), Some(mac), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed);
        };
        if version != PROOF_VERSION {
            return Err("unknown version of the proof of the cluster secret");
        }
        let millis: u64 = millis.parse().map_err(|_| malformed)?;
        let nonce_value = match unhex(nonce).map(<[u8; NONCE_BYTES]>::try_from) {
            Some(Ok(bytes)) => u128::from_be_bytes(bytes),
            _ => return Err(malformed),
        };
        let mac = unhex(mac).ok_or(malformed)?;
        hmac::verify(&secret.key, message(millis, nonce).as_bytes(), &mac)
            .map_err(|_| "wrong proof of the cluster secret (a different secret?)")?;
        let now = unix_millis();
        if now.abs_diff(millis) > MAX_CLOCK_SKEW.as_millis() as u64 {
            return Err(
                "expired proof of the cluster secret (clocks more than 300 s apart, or a replay)",
            );
        }
        let fresh = self
            .replays
            .lock()
            .map_err(|_| "replay cache unavailable")?
            .insert(nonce_value, millis, now);
        if !fresh {
            return Err("replayed proof of the cluster secret");
        }
        Ok(())
    }
}

impl Interceptor for ServerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(secret) = &self.secret else {
            return Ok(request);
        };
        match self.check(secret, &request) {
            Ok(()) => Ok(request),
            Err(reason) => {
                let peer = request
                    .remote_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "an unknown peer".into());
                tracing::warn!(%peer, reason, "request refused");
                Err(Status::unauthenticated(format!(
                    "request refused: {reason}; every process of a minispark cluster needs its \
                     secret (--secret-file PATH or {SECRET_ENV})"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(proof: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(p) = proof {
            r.metadata_mut()
                .insert(AUTH_METADATA, MetadataValue::try_from(p).unwrap());
        }
        r
    }

    fn secret(text: &str) -> Secret {
        Secret::new(text.as_bytes(), "a test").unwrap()
    }

    #[test]
    fn a_proof_is_accepted_once() {
        let s = secret("0123456789abcdef-right");
        let mut server = ServerAuth::new(Some(s.clone()));
        let proof = s.proof().unwrap();
        assert!(!proof.contains("0123456789abcdef"));
        server.call(request(Some(&proof))).unwrap();
        let again = server.call(request(Some(&proof))).unwrap_err();
        assert_eq!(again.code(), tonic::Code::Unauthenticated);
        assert!(again.message().contains("replayed"), "{again}");
    }

    #[test]
    fn missing_wrong_stale_and_malformed_proofs_are_refused() {
        let s = secret("0123456789abcdef-right");
        let mut server = ServerAuth::new(Some(s.clone()));
        let wrong = secret("0123456789abcdef-wrong").proof().unwrap();
        let stale_millis = unix_millis() - MAX_CLOCK_SKEW.as_millis() as u64 - 1000;
        let nonce = "00".repeat(NONCE_BYTES);
        let stale = format!(
            "v1.{stale_millis}.{nonce}.{}",
            hex(s.mac(stale_millis, &nonce).as_ref())
        );
        let good = s.proof().unwrap();
        let tampered = good.replacen("v1.1", "v1.2", 1);
        for (proof, why) in [
            (None, "no proof"),
            (Some(wrong.as_str()), "wrong proof"),
            (Some(stale.as_str()), "expired"),
            (Some("v1.x.y.z"), "malformed"),
            (Some("v2.1.2.3"), "unknown version"),
            (Some(tampered.as_str()), "wrong proof"),
        ] {
            let err = server.call(request(proof)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{proof:?}");
            assert!(err.message().contains(why), "{proof:?}: {err}");
            assert!(!err.message().contains("0123456789abcdef"), "{err}");
        }
    }

    #[test]
    fn no_secret_lets_everything_through() {
        ServerAuth::new(None).call(request(None)).unwrap();
        let r = ClientAuth::new(None).call(request(None)).unwrap();
        assert!(r.metadata().get(AUTH_METADATA).is_none());
    }

    #[test]
    fn short_secrets_are_refused_and_debug_hides_the_secret() {
        let err = Secret::new(b"  short\n", "$X").unwrap_err().to_string();
        assert!(err.contains("at least 16") && err.contains("$X"), "{err}");
        let (s, text) = Secret::random().unwrap();
        assert_eq!(text.len(), 64);
        assert!(!format!("{s:?}").contains(&text));
        // Trailing newlines of a secret file are not part of the secret.
        let a = secret("0123456789abcdef\n");
        let b = secret("0123456789abcdef");
        let mut server = ServerAuth::new(Some(b));
        server.call(request(Some(&a.proof().unwrap()))).unwrap();
    }
}
