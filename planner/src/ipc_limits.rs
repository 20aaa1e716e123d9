//! Checks on an Arrow IPC stream from another process (a shuffle block, a
//! job's result) before its messages are decoded: every message's declared
//! metadata size, body size and the decompressed sizes its compressed
//! buffers declare are held against limits *before* anything is allocated
//! for them. Without this a few hostile bytes declaring a buffer of 2^60
//! bytes make the LZ4 or ZSTD decoder reserve that much and abort the
//! process.
//!
//! [`IpcFramer`] cuts the incoming bytes into whole messages (zero-copy
//! when a message lies within one chunk) and checks each one; the
//! `StreamDecoder` then only ever sees whole, checked messages.

use arrow::buffer::Buffer;
use arrow::ipc::{MessageHeader, root_as_message};
use datafusion::common::{DataFusionError, Result};
use minispark_proto::limits::{MAX_DECODED_MESSAGE_BYTES, MAX_IPC_METADATA_BYTES};

const CONTINUATION: u32 = 0xFFFF_FFFF;

/// Size limits of one IPC message.
#[derive(Debug, Clone, Copy)]
pub struct IpcLimits {
    /// Largest flatbuffer header.
    pub metadata_bytes: usize,
    /// Largest body, and largest sum of the decompressed sizes its buffers declare.
    pub decoded_bytes: u64,
}

impl Default for IpcLimits {
    fn default() -> Self {
        Self {
            metadata_bytes: MAX_IPC_METADATA_BYTES,
            decoded_bytes: MAX_DECODED_MESSAGE_BYTES,
        }
    }
}

fn refused(message: String) -> DataFusionError {
    DataFusionError::Execution(format!("refused Arrow IPC data: {message}"))
}

/// Cuts an Arrow IPC stream arriving in chunks into whole, checked messages.
#[derive(Debug, Default)]
pub struct IpcFramer {
    limits: IpcLimits,
    /// Bytes of a message that started in an earlier chunk.
    pending: Vec<u8>,
}

impl IpcFramer {
    pub fn new(limits: IpcLimits) -> Self {
        Self {
            limits,
            pending: Vec::new(),
        }
    }

    /// Feeds one chunk; returns the whole messages it completed, each checked.
    pub fn push(&mut self, chunk: Buffer) -> Result<Vec<Buffer>> {
        let mut data = if self.pending.is_empty() {
            chunk
        } else {
            self.pending.extend_from_slice(&chunk);
            Buffer::from(std::mem::take(&mut self.pending))
        };
        let mut out = vec![];
        loop {
            match self.message_len(&data)? {
                Some(len) => {
                    out.push(data.slice_with_length(0, len));
                    data = data.slice(len);
                    if data.is_empty() {
                        break;
                    }
                }
                None => {
                    self.pending.extend_from_slice(&data);
                    break;
                }
            }
        }
        Ok(out)
    }

    /// True when the stream ended between two messages.
    pub fn at_message_boundary(&self) -> bool {
        self.pending.is_empty()
    }

    /// The length of the whole message at the start of `data`, once it has
    /// fully arrived and passed the checks; `None` while bytes are missing.
    fn message_len(&self, data: &[u8]) -> Result<Option<usize>> {
        let Some(first) = read_u32(data, 0) else {
            return Ok(None);
        };
        let (prefix, meta_len) = if first == CONTINUATION {
            match read_u32(data, 4) {
                Some(len) => (8usize, len as i32),
                None => return Ok(None),
            }
        } else {
            (4usize, first as i32)
        };
        if meta_len == 0 {
            // End of stream.
            return Ok(Some(prefix));
        }
        if meta_len < 0 || meta_len as usize > self.limits.metadata_bytes {
            return Err(refused(format!(
                "a message declares {meta_len} bytes of metadata; the limit is {}",
                self.limits.metadata_bytes
            )));
        }
        let meta_end = prefix + meta_len as usize;
        if data.len() < meta_end {
            return Ok(None);
        }
        let message = root_as_message(&data[prefix..meta_end])
            .map_err(|e| refused(format!("invalid message header: {e}")))?;
        let body_len = message.bodyLength();
        if body_len < 0 || body_len as u64 > self.limits.decoded_bytes {
            return Err(refused(format!(
                "a message declares a body of {body_len} bytes; the limit is {} bytes",
                self.limits.decoded_bytes
            )));
        }
        let end = meta_end + body_len as usize;
        if data.len() < end {
            return Ok(None);
        }
        let body = &data[meta_end..end];
        let batch = match message.header_type() {
            MessageHeader::RecordBatch => message.header_as_record_batch(),
            MessageHeader::DictionaryBatch => {
                message.header_as_dictionary_batch().and_then(|d| d.data())
            }
            _ => None,
        };
        if let Some(batch) = batch {
            let compressed = batch.compression().is_some();
            let mut decoded: u64 = 0;
            for buffer in batch.buffers().into_iter().flatten() {
                let (offset, length) = (buffer.offset(), buffer.length());
                let in_body = offset >= 0
                    && length >= 0
                    && (offset as u64).saturating_add(length as u64) <= body.len() as u64;
                if !in_body {
                    return Err(refused(format!(
                        "a buffer at {offset} of {length} bytes lies outside its message body of {} bytes",
                        body.len()
                    )));
                }
                let size = if compressed && length >= 8 {
                    let at = offset as usize;
                    let declared =
                        i64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
                    // -1: stored uncompressed.
                    if declared == -1 {
                        length as u64
                    } else if declared < 0 {
                        return Err(refused(format!(
                            "a buffer declares {declared} decompressed bytes; the limit is 0 to {} bytes",
                            self.limits.decoded_bytes
                        )));
                    } else {
                        declared as u64
                    }
                } else {
                    length as u64
                };
                decoded = decoded.saturating_add(size);
            }
            if decoded > self.limits.decoded_bytes {
                return Err(refused(format!(
                    "a record batch declares {decoded} bytes once decompressed; the limit is {} bytes",
                    self.limits.decoded_bytes
                )));
            }
        }
        Ok(Some(end))
    }
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};

    use crate::config::ShuffleCompression;
    use crate::ipc::{ChunkDecoder, encode_stream};

    fn stream(compression: ShuffleCompression) -> (Vec<u8>, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from_iter_values(0..1000))],
        )
        .unwrap();
        let bytes = encode_stream(&schema, std::slice::from_ref(&batch), compression).unwrap();
        (bytes, batch)
    }

    #[test]
    fn whole_streams_decode_in_chunks_of_any_size() {
        for compression in [ShuffleCompression::Lz4, ShuffleCompression::None] {
            let (bytes, batch) = stream(compression);
            for chunk in [1, 7, 64, bytes.len()] {
                let mut decoder = ChunkDecoder::new();
                let mut got = vec![];
                for part in bytes.chunks(chunk) {
                    got.extend(decoder.push(bytes::Bytes::copy_from_slice(part)).unwrap());
                }
                decoder.finish().unwrap();
                assert_eq!(got, vec![batch.clone()], "chunks of {chunk}");
            }
        }
    }

    /// The position of the first compressed buffer's declared length in an
    /// LZ4 stream: the 8 bytes that equal the buffer's real decompressed size.
    fn declared_length_at(bytes: &[u8], size: u64) -> usize {
        bytes
            .windows(8)
            .position(|w| w == size.to_le_bytes())
            .expect("the declared length is in the stream")
    }

    #[test]
    fn huge_declared_sizes_are_refused_before_allocating() {
        let (bytes, _) = stream(ShuffleCompression::Lz4);
        // The values buffer: 1000 i64 = 8000 bytes once decompressed.
        let at = declared_length_at(&bytes, 8000);
        for declared in [1u64 << 60, (1u64 << 31) + 1, u64::MAX - 5] {
            let mut hostile = bytes.clone();
            hostile[at..at + 8].copy_from_slice(&declared.to_le_bytes());
            let mut decoder = ChunkDecoder::new();
            let err = decoder
                .push(bytes::Bytes::from(hostile))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("refused Arrow IPC data") && err.contains("limit"),
                "{err}"
            );
        }
        // A huge declared metadata length and body length.
        let mut decoder = ChunkDecoder::new();
        let mut huge = vec![0xFF, 0xFF, 0xFF, 0xFF];
        huge.extend_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
        let err = decoder
            .push(bytes::Bytes::from(huge))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bytes of metadata"), "{err}");
        // Random bytes are an error, never a panic.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200 {
            let garbage: Vec<u8> = (0..256)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let mut decoder = ChunkDecoder::new();
            let ok = decoder.push(bytes::Bytes::from(garbage)).is_ok();
            let _ = ok && decoder.finish().is_ok();
        }
        // A stream cut short is an error at the end.
        let mut decoder = ChunkDecoder::new();
        decoder
            .push(bytes::Bytes::copy_from_slice(&bytes[..bytes.len() / 2]))
            .unwrap();
        assert!(decoder.finish().is_err());
    }
}
