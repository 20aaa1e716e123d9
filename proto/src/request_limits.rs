//! # Request size limits per RPC
//!
//! tonic bounds decoded messages per *service*: the driver's service takes
//! job plans (SubmitJob, up to [`PLAN_MESSAGE_LIMIT`]) and so, through the
//! same bound, a 1 GiB heartbeat would be buffered whole before it is
//! refused. This layer, in front of every service of a driver and an
//! executor (inside the authentication layer: only authenticated requests
//! get this far), bounds each RPC's request messages by what that RPC
//! carries ([`request_limit`]).
//!
//! It reads the gRPC framing as the bytes arrive: every message is a 5-byte
//! header (a compression flag, then the message length as a big-endian
//! `u32`) and the message. A header that declares more than the RPC's
//! limit ends the request with `ResourceExhausted` naming the RPC and the
//! limit, before the message itself is read or buffered.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;

use crate::limits::{PLAN_MESSAGE_LIMIT, SMALL_MESSAGE_LIMIT};

/// The largest request message `path` (`/package.Service/Method`) accepts:
/// [`PLAN_MESSAGE_LIMIT`] for the two that carry plans (SubmitJob,
/// LaunchTask), [`SMALL_MESSAGE_LIMIT`] for every other (registrations,
/// heartbeats, job references, shuffle block ids) and for unknown paths.
pub fn request_limit(path: &str) -> usize {
    match path {
        "/minispark.Driver/SubmitJob" | "/minispark.Executor/LaunchTask" => PLAN_MESSAGE_LIMIT,
        _ => SMALL_MESSAGE_LIMIT,
    }
}

/// The tower layer bounding every request by [`request_limit`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestLimitLayer;

impl<S> tower_layer::Layer<S> for RequestLimitLayer {
    type Service = RequestLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLimit { inner }
    }
}

/// A service whose requests' bodies are bounded per RPC.
#[derive(Debug, Clone)]
pub struct RequestLimit<S> {
    inner: S,
}

impl<S> tower_service::Service<http::Request<tonic::body::Body>> for RequestLimit<S>
where
    S: tower_service::Service<http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let path = request.uri().path();
        let limit = request_limit(path);
        let rpc = path.rsplit('/').next().unwrap_or_default();
        // The method name is ours when the path is one of ours; anything else
        // is cut short, it ends up in an error message.
        let rpc: String = rpc.chars().take(64).collect();
        let request = request.map(|body| {
            tonic::body::Body::new(LimitedBody {
                inner: body,
                scanner: FrameScanner::default(),
                limit,
                rpc,
                failed: false,
            })
        });
        self.inner.call(request)
    }
}

/// A request body that fails once a message header declares more than
/// `limit` bytes.
struct LimitedBody {
    inner: tonic::body::Body,
    scanner: FrameScanner,
    limit: usize,
    rpc: String,
    failed: bool,
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Err(declared) = this.scanner.feed(data, this.limit)
        {
            this.failed = true;
            return Poll::Ready(Some(Err(Status::resource_exhausted(format!(
                "a {} request message of {declared} bytes is over the limit of {} bytes \
                 for {} requests",
                this.rpc, this.limit, this.rpc
            )))));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Follows the gRPC message framing of a byte stream fed in pieces of any
/// size: which bytes are headers, what each header declares.
#[derive(Debug, Default)]
struct FrameScanner {
    header: [u8; 5],
    /// Bytes of the current header seen so far.
    header_seen: usize,
    /// Bytes of the current message still to come.
    message_left: u64,
}

impl FrameScanner {
    /// Consumes `bytes`; the declared length of the first message over
    /// `limit` is the error.
    fn feed(&mut self, mut bytes: &[u8], limit: usize) -> Result<(), u64> {
        while !bytes.is_empty() {
            if self.message_left > 0 {
                let n = (self.message_left as usize).min(bytes.len());
                self.message_left -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = (5 - self.header_seen).min(bytes.len());
            self.header[self.header_seen..self.header_seen + n].copy_from_slice(&bytes[..n]);
            self.header_seen += n;
            bytes = &bytes[n..];
            if self.header_seen == 5 {
                self.header_seen = 0;
                let declared = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]) as u64;
                if declared > limit as u64 {
                    return Err(declared);
                }
                self.message_left = declared;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(len: u32) -> Vec<u8> {
        let mut out = vec![0u8];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, len as usize));
        out
    }

    #[test]
    fn plans_get_the_plan_limit_and_everything_else_the_small_one() {
        assert_eq!(
            request_limit("/minispark.Driver/SubmitJob"),
            PLAN_MESSAGE_LIMIT
        );
        assert_eq!(
            request_limit("/minispark.Executor/LaunchTask"),
            PLAN_MESSAGE_LIMIT
        );
        for small in [
            "/minispark.Driver/Heartbeat",
            "/minispark.Driver/RegisterExecutor",
            "/minispark.Executor/FetchPartition",
            "/minispark.Executor/CancelJob",
            "/minispark.Executor/RemoveJobData",
            "/nope/SubmitJob",
        ] {
            assert_eq!(request_limit(small), SMALL_MESSAGE_LIMIT, "{small}");
        }
    }

    #[test]
    fn messages_within_the_limit_pass_in_pieces_of_any_size() {
        let mut stream = framed(10);
        stream.extend(framed(0));
        stream.extend(framed(100));
        for piece in [1, 2, 3, 5, 7, 64, 1000] {
            let mut scanner = FrameScanner::default();
            for chunk in stream.chunks(piece) {
                assert_eq!(scanner.feed(chunk, 100), Ok(()), "pieces of {piece}");
            }
            assert_eq!(scanner.header_seen, 0);
            assert_eq!(scanner.message_left, 0);
        }
    }

    #[test]
    fn a_header_over_the_limit_is_caught_wherever_it_is_split() {
        // The message bytes of the first message contain what would look
        // like a huge header: they must be skipped, not read as one.
        let mut first = vec![0u8, 0, 0, 0, 6];
        first.extend_from_slice(&[0, 0xff, 0xff, 0xff, 0xff, 0]);
        let mut stream = first.clone();
        stream.extend_from_slice(&[0, 0, 0, 0x01, 0x01]); // declares 257
        for piece in 1..=stream.len() {
            let mut scanner = FrameScanner::default();
            let mut result = Ok(());
            for chunk in stream.chunks(piece) {
                result = scanner.feed(chunk, 256);
                if result.is_err() {
                    break;
                }
            }
            assert_eq!(result, Err(257), "pieces of {piece}");
        }
        let mut scanner = FrameScanner::default();
        assert_eq!(scanner.feed(&first, 256), Ok(()));
    }
}
