//! Arrow IPC: how batches are laid out on disk and on the wire.
//!
//! Shuffle blocks are Arrow IPC *streams* (schema message, then record
//! batches), compressed per buffer with LZ4 or ZSTD. The same bytes are
//! written to disk by a map task, streamed over gRPC in chunks unchanged,
//! and decoded by the reader: no re-encoding between disk and network.

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::CompressionType;
use arrow::ipc::reader::StreamDecoder;
use arrow::ipc::writer::IpcWriteOptions;
use datafusion::common::{DataFusionError, Result};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};

use crate::config::ShuffleCompression;
use crate::ipc_limits::{IpcFramer, IpcLimits};

/// IPC write options for a codec.
pub fn write_options(compression: ShuffleCompression) -> Result<IpcWriteOptions> {
    let codec = match compression {
        ShuffleCompression::Lz4 => Some(CompressionType::LZ4_FRAME),
        ShuffleCompression::Zstd => Some(CompressionType::ZSTD),
        ShuffleCompression::None => None,
    };
    Ok(IpcWriteOptions::default().try_with_compression(codec)?)
}

/// Incrementally decodes an Arrow IPC stream that arrives in chunks of any
/// size. Each message's declared sizes are checked against [`IpcLimits`]
/// before it is decoded (see [`crate::ipc_limits`]).
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    framer: IpcFramer,
    decoder: StreamDecoder,
}

impl ChunkDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with other limits than the defaults.
    pub fn with_limits(limits: IpcLimits) -> Self {
        Self {
            framer: IpcFramer::new(limits),
            decoder: StreamDecoder::default(),
        }
    }

    /// Feeds one chunk; returns the batches it completed.
    pub fn push(&mut self, chunk: bytes::Bytes) -> Result<Vec<RecordBatch>> {
        let mut out = vec![];
        for mut message in self.framer.push(Buffer::from(chunk))? {
            while !message.is_empty() {
                if let Some(batch) = self.decoder.decode(&mut message)? {
                    out.push(batch);
                }
            }
        }
        Ok(out)
    }

    /// Checks the stream ended on a message boundary.
    pub fn finish(&mut self) -> Result<()> {
        if !self.framer.at_message_boundary() {
            return Err(DataFusionError::Execution(
                "Arrow IPC stream ended in the middle of a message".into(),
            ));
        }
        Ok(self.decoder.finish()?)
    }
}

/// Encodes `batches` as one IPC stream (used for small results).
pub fn encode_stream(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    compression: ShuffleCompression,
) -> Result<Vec<u8>> {
    let mut out = vec![];
    {
        let mut writer = arrow::ipc::writer::StreamWriter::try_new_with_options(
            &mut out,
            schema,
            write_options(compression)?,
        )?;
        for b in batches {
            writer.write(b)?;
        }
        writer.finish()?;
    }
    Ok(out)
}

/// Decodes a complete IPC stream (checked like any other, see [`ChunkDecoder`]).
pub fn decode_stream(bytes: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let mut decoder = ChunkDecoder::new();
    let batches = decoder.push(bytes::Bytes::copy_from_slice(bytes))?;
    decoder.finish()?;
    let schema = decoder
        .schema()
        .ok_or_else(|| DataFusionError::Execution("Arrow IPC stream without a schema".into()))?;
    Ok((schema, batches))
}

impl ChunkDecoder {
    /// The stream's schema, once its first message has been decoded.
    pub fn schema(&self) -> Option<SchemaRef> {
        self.decoder.schema()
    }
}

/// Decodes an Arrow IPC stream that arrives as a stream of byte chunks (as
/// shuffle blocks do over gRPC); `on_error` turns a transport error into an
/// engine error that names the source.
pub fn decode_chunk_stream<S, E, F>(
    chunks: S,
    on_error: F,
) -> BoxStream<'static, Result<RecordBatch>>
where
    S: Stream<Item = std::result::Result<Vec<u8>, E>> + Send + Unpin + 'static,
    E: Send + 'static,
    F: Fn(E) -> DataFusionError + Send + Sync + 'static,
{
    let state = (chunks, ChunkDecoder::new(), on_error);
    futures::stream::try_unfold(state, |(mut chunks, mut decoder, on_error)| async move {
        loop {
            match chunks.next().await {
                Some(Ok(chunk)) => {
                    let batches = decoder.push(bytes::Bytes::from(chunk))?;
                    if !batches.is_empty() {
                        return Ok(Some((batches, (chunks, decoder, on_error))));
                    }
                }
                Some(Err(e)) => return Err(on_error(e)),
                None => {
                    decoder.finish()?;
                    return Ok(None);
                }
            }
        }
    })
    .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
    .try_flatten()
    .boxed()
}
