//! A map task's committed output: one data file and one index (Spark's
//! sort-shuffle layout, `IndexShuffleBlockResolver`), in a directory of its
//! own:
//!
//! ```text
//! <work-dir>/<job-id>/stage-<s>/map-<m>/data    every block's Arrow IPC stream bytes
//! <work-dir>/<job-id>/stage-<s>/map-<m>/index   which bytes of `data` are block r's
//! ```
//!
//! A block's bytes are one Arrow IPC stream. A map task keeps encoded
//! blocks in memory and appends them to `data` when they reach a bound (and
//! at the end), so a block is a list of *segments* of `data`, in order; a
//! small map output has one segment per block, as in Spark.
//!
//! The index (little-endian):
//!
//! ```text
//! "MSPKIDX1"  attempt: u32  blocks: u32
//! blocks x { rows: u64  segments: u32 }
//! every block's segments, in block order: { offset: u64  len: u64 }
//! ```
//!
//! It also names the task attempt that wrote the output, so a reader can
//! tell the output it was promised from another attempt's.

use std::path::{Path, PathBuf};

use futures::Stream;
use minispark_planner::exchange::BlockStats;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The data file of a committed map output.
pub const DATA_FILE: &str = "data";
/// The index file of a committed map output.
pub const INDEX_FILE: &str = "index";

const MAGIC: &[u8; 8] = b"MSPKIDX1";

/// Most blocks an index may describe (far above any partition count).
const MAX_BLOCKS: u32 = 1 << 20;

/// One block of a map output: its rows and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexedBlock {
    pub rows: u64,
    /// `(offset, len)` ranges of the data file, in order.
    pub segments: Vec<(u64, u64)>,
}

impl IndexedBlock {
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|(_, len)| len).sum()
    }
}

/// The index of one committed map output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShuffleIndex {
    /// The task attempt that wrote it.
    pub attempt: u32,
    /// One entry per reduce partition (block).
    pub blocks: Vec<IndexedBlock>,
}

fn invalid(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

impl ShuffleIndex {
    pub fn encode(&self) -> Vec<u8> {
        let segments: usize = self.blocks.iter().map(|b| b.segments.len()).sum();
        let mut out = Vec::with_capacity(16 + self.blocks.len() * 12 + segments * 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.attempt.to_le_bytes());
        out.extend_from_slice(&(self.blocks.len() as u32).to_le_bytes());
        for b in &self.blocks {
            out.extend_from_slice(&b.rows.to_le_bytes());
            out.extend_from_slice(&(b.segments.len() as u32).to_le_bytes());
        }
        for (offset, len) in self.blocks.iter().flat_map(|b| &b.segments) {
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        }
        out
    }

    /// Reads an index back; anything that is not a whole index is an error.
    pub fn decode(bytes: &[u8]) -> std::io::Result<Self> {
        let mut rest = bytes;
        let mut take = |n: usize| -> std::io::Result<&[u8]> {
            if rest.len() < n {
                return Err(invalid("shuffle index is truncated"));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        if take(8)? != MAGIC {
            return Err(invalid("not a shuffle index"));
        }
        let u32_at = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
        let u64_at = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let attempt = u32_at(take(4)?);
        let count = u32_at(take(4)?);
        if count > MAX_BLOCKS {
            return Err(invalid(format!("shuffle index of {count} blocks")));
        }
        let mut blocks = Vec::with_capacity(count as usize);
        let mut counts = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let rows = u64_at(take(8)?);
            counts.push(u32_at(take(4)?) as usize);
            blocks.push(IndexedBlock {
                rows,
                segments: vec![],
            });
        }
        for (block, n) in blocks.iter_mut().zip(counts) {
            for _ in 0..n {
                let offset = u64_at(take(8)?);
                let len = u64_at(take(8)?);
                offset
                    .checked_add(len)
                    .ok_or_else(|| invalid("shuffle index segment out of range"))?;
                block.segments.push((offset, len));
            }
        }
        if !rest.is_empty() {
            return Err(invalid("shuffle index has trailing bytes"));
        }
        Ok(Self { attempt, blocks })
    }

    /// Bytes the data file must have: the end of the last segment.
    pub fn data_len(&self) -> u64 {
        self.blocks
            .iter()
            .flat_map(|b| &b.segments)
            .map(|(offset, len)| offset + len)
            .max()
            .unwrap_or(0)
    }

    /// What the map task reports for each block.
    pub fn stats(&self) -> Vec<BlockStats> {
        self.blocks
            .iter()
            .enumerate()
            .map(|(r, b)| BlockStats {
                reduce_partition: r,
                rows: b.rows,
                bytes: b.bytes(),
            })
            .collect()
    }

    /// The index of the committed output in `dir`.
    pub async fn read(dir: &Path) -> std::io::Result<Self> {
        Self::decode(&tokio::fs::read(dir.join(INDEX_FILE)).await?)
    }

    /// The index of the committed output in `dir`, when the output is
    /// whole: its data file has every byte the index names.
    pub fn read_whole(dir: &Path) -> std::io::Result<Self> {
        let index = Self::decode(&std::fs::read(dir.join(INDEX_FILE))?)?;
        let len = std::fs::metadata(dir.join(DATA_FILE))?.len();
        if len < index.data_len() {
            return Err(invalid(format!(
                "shuffle data file of {len} bytes, its index names {}",
                index.data_len()
            )));
        }
        Ok(index)
    }
}

/// The bytes of `segments` of the file at `path`, in order, in chunks of
/// at most `chunk` bytes: a block read as a stream, never whole.
pub fn segment_chunks(
    path: PathBuf,
    segments: Vec<(u64, u64)>,
    chunk: usize,
) -> impl Stream<Item = std::io::Result<Vec<u8>>> + Send + Unpin + 'static {
    struct State {
        path: PathBuf,
        file: Option<tokio::fs::File>,
        segments: std::vec::IntoIter<(u64, u64)>,
        left: u64,
        chunk: usize,
    }
    let state = State {
        path,
        file: None,
        segments: segments.into_iter(),
        left: 0,
        chunk: chunk.max(1),
    };
    Box::pin(futures::stream::try_unfold(state, |mut s| async move {
        while s.left == 0 {
            let Some((offset, len)) = s.segments.next() else {
                return Ok(None);
            };
            if s.file.is_none() {
                s.file = Some(tokio::fs::File::open(&s.path).await?);
            }
            let file = s.file.as_mut().expect("opened above");
            file.seek(std::io::SeekFrom::Start(offset)).await?;
            s.left = len;
        }
        let n = (s.left as usize).min(s.chunk);
        let mut buf = vec![0u8; n];
        s.file
            .as_mut()
            .expect("opened with its segment")
            .read_exact(&mut buf)
            .await?;
        s.left -= n as u64;
        Ok(Some((buf, s)))
    }))
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;

    #[tokio::test]
    async fn an_index_round_trips_and_damage_is_refused() {
        let index = ShuffleIndex {
            attempt: 3,
            blocks: vec![
                IndexedBlock {
                    rows: 10,
                    segments: vec![(0, 4), (9, 2)],
                },
                IndexedBlock::default(),
                IndexedBlock {
                    rows: 1,
                    segments: vec![(4, 5)],
                },
            ],
        };
        let bytes = index.encode();
        assert_eq!(ShuffleIndex::decode(&bytes).unwrap(), index);
        assert_eq!(index.data_len(), 11);
        assert_eq!(index.stats()[0].bytes, 6);
        for cut in [0, 7, 12, bytes.len() - 1] {
            assert!(ShuffleIndex::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ShuffleIndex::decode(&longer).is_err());

        // A block's segments are read in order, in chunks.
        let dir = std::env::temp_dir().join(format!("minispark-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(INDEX_FILE), &bytes).unwrap();
        std::fs::write(dir.join(DATA_FILE), b"abcdEFGHIjk").unwrap();
        assert_eq!(ShuffleIndex::read_whole(&dir).unwrap(), index);
        let chunks: Vec<Vec<u8>> = segment_chunks(dir.join(DATA_FILE), vec![(0, 4), (9, 2)], 3)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(chunks.concat(), b"abcdjk");
        assert!(chunks.iter().all(|c| c.len() <= 3));
        // A data file shorter than its index says is not a whole output.
        std::fs::write(dir.join(DATA_FILE), b"abcd").unwrap();
        assert!(ShuffleIndex::read_whole(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
