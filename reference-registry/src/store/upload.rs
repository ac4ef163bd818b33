//! Upload sessions' content: [`Upload`] spools a session's bytes (a temp file, or memory)
//! while hashing them incrementally; `append` streams a request body through a pipeline
//! (batched writes, hashing on a blocking thread) and rolls back on any failure.

use super::blocking;
use crate::spec::{Algorithm, Digest, Hasher};
use futures::StreamExt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An upload session: a temp file plus an incremental hasher.
pub struct Upload {
    pub repo: String,
    pub id: String,
    pub(super) spool: Spool,
    size: u64,
    hasher: Hasher,
    /// Set once completed or cancelled; a waiter holding the `Arc` sees it.
    pub closed: bool,
    /// Scheme and host of absolute `Location`s (`None`: relative ones).
    pub public_base: Option<String>,
    /// The last chunk received was below the advertised minimum (quirk `chunk_min`).
    pub last_chunk_small: bool,
    /// A chunk below the minimum was followed by more data.
    pub min_violated: bool,
}

/// Where an upload's bytes wait until it is committed.
pub(super) enum Spool {
    /// A temp file (`file` is `None` once closed).
    File {
        path: PathBuf,
        file: Option<std::fs::File>,
    },
    /// Memory (storage that keeps content in memory anyway).
    Memory(Vec<u8>),
}

/// A finished upload's content, handed to [`Backend::commit_blob`](super::Backend::commit_blob).
pub enum Spooled {
    /// A closed temp file the backend takes over (moves or removes).
    File(PathBuf),
    Memory(Vec<u8>),
}

impl Spool {
    pub(super) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Spool::File { file: Some(f), .. } => f.write_all(data),
            Spool::File { file: None, .. } => Err(io::Error::other("upload closed")),
            Spool::Memory(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
        }
    }

    fn truncate(&mut self, len: u64) {
        match self {
            Spool::File { file: Some(f), .. } => {
                let _ = f.set_len(len);
            }
            Spool::File { file: None, .. } => {}
            Spool::Memory(v) => v.truncate(usize::try_from(len).unwrap_or(usize::MAX)),
        }
    }

    /// Takes the content out (closing the file), leaving an empty spool.
    pub(super) fn take(&mut self) -> Spooled {
        match self {
            Spool::File { path, file } => {
                *file = None;
                Spooled::File(path.clone())
            }
            Spool::Memory(v) => Spooled::Memory(std::mem::take(v)),
        }
    }

    fn discard(&mut self) {
        match self {
            Spool::File { path, file } => {
                *file = None;
                let _ = std::fs::remove_file(path);
            }
            Spool::Memory(v) => *v = Vec::new(),
        }
    }
}

/// A saved upload state (size and hasher).
pub struct Checkpoint {
    size: u64,
    hasher: Hasher,
}

/// Why appending a chunk failed (the chunk is rolled back in every case).
#[derive(Debug)]
pub enum AppendError {
    /// Reading the request body failed.
    Body,
    /// The body length differs from what `Content-Range`/`Content-Length` announced.
    Length { expected: u64, got: u64 },
    /// Writing the temp file failed.
    Io(io::Error),
}

/// Body frames are gathered into batches of about this many bytes before
/// they are written (one write) and hashed.
pub(super) const BATCH_BYTES: usize = 1 << 20;
/// Batches queued for the hashing thread (bounds memory per upload).
const BATCH_QUEUE: usize = 2;
/// Kernel writeback of a session file is started every this many bytes, so
/// that the fsync at commit has little left to wait for.
const WRITEBACK_BYTES: u64 = 8 << 20;

/// Restores an upload to its checkpoint when dropped armed (error, or the
/// `append` future dropped half-way).
struct Rollback<'a> {
    up: &'a mut Upload,
    cp: Option<Checkpoint>,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if let Some(cp) = self.cp.take() {
            self.up.restore(cp);
        }
    }
}

/// Starts (does not wait for) writeback of `len` bytes at `offset`
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`); a hint, errors are ignored.
#[cfg(target_os = "linux")]
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    extern "C" {
        fn sync_file_range(fd: i32, offset: i64, nbytes: i64, flags: u32) -> i32;
    }
    const SYNC_FILE_RANGE_WRITE: u32 = 2;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: plain syscall wrapper on a valid, open descriptor; no memory
    // is passed.
    unsafe {
        sync_file_range(file.as_raw_fd(), offset, len, SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &std::fs::File, _: u64, _: u64) {}

impl Upload {
    pub(super) fn create(dir: Option<&Path>, repo: &str, alg: Algorithm) -> io::Result<Upload> {
        let id = uuid::Uuid::new_v4().to_string();
        let spool = match dir {
            Some(dir) => {
                let path = dir.join(&id);
                let file = std::fs::OpenOptions::new()
                    .create_new(true)
                    .append(true)
                    .open(&path)?;
                Spool::File {
                    path,
                    file: Some(file),
                }
            }
            None => Spool::Memory(Vec::new()),
        };
        Ok(Upload {
            repo: repo.to_owned(),
            id,
            spool,
            size: 0,
            hasher: alg.hasher(),
            closed: false,
            public_base: None,
            last_chunk_small: false,
            min_violated: false,
        })
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The current state, for [`Upload::restore`].
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            size: self.size,
            hasher: self.hasher.clone(),
        }
    }

    /// Rolls the upload back to a checkpoint (truncating the spooled content).
    pub fn restore(&mut self, cp: Checkpoint) {
        if self.closed {
            return;
        }
        self.size = cp.size;
        self.hasher = cp.hasher;
        self.spool.truncate(cp.size);
    }

    /// Streams `body` onto the end of the upload, updating the hasher.
    /// With `expected`, the chunk must be exactly that long. On any error,
    /// and if the returned future is dropped before it completes (client
    /// gone), the upload is restored to its state before the call.
    ///
    /// Pipeline: this task reads body frames, gathers them into batches of
    /// [`BATCH_BYTES`] and writes each batch with one vectored write; the
    /// batches go through a bounded channel to a blocking thread that
    /// hashes them, so hashing (the most expensive step) overlaps with
    /// receiving and writing. At most [`BATCH_QUEUE`] + 2 batches are in
    /// memory at a time.
    pub async fn append(
        &mut self,
        body: axum::body::Body,
        expected: Option<u64>,
    ) -> Result<u64, AppendError> {
        let mut guard = Rollback {
            cp: Some(self.checkpoint()),
            up: self,
        };
        let res = guard.up.append_inner(body, expected).await;
        if res.is_ok() {
            guard.cp = None;
        }
        res
    }

    async fn append_inner(
        &mut self,
        body: axum::body::Body,
        expected: Option<u64>,
    ) -> Result<u64, AppendError> {
        let size0 = self.size;
        let mut stream = body.into_data_stream();
        // Batches are copied out of the body frames into reused buffers, so
        // that hyper can reuse its read buffer and nothing is reallocated per
        // frame. Buffers come back from the hashing thread.
        let (back_tx, mut back_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let mut buf: Vec<u8> = Vec::new();
        let mut hash_tx: Option<tokio::sync::mpsc::Sender<Vec<u8>>> = None;
        let mut hash_task: Option<tokio::task::JoinHandle<Hasher>> = None;
        let mut unsynced = 0u64;
        let mut received = 0u64;
        loop {
            let chunk = match stream.next().await {
                Some(Ok(c)) => Some(c),
                Some(Err(_)) => return Err(AppendError::Body),
                None => None,
            };
            let done = chunk.is_none();
            if let Some(chunk) = chunk {
                received += chunk.len() as u64;
                if let Some(exp) = expected {
                    if received > exp {
                        return Err(AppendError::Length {
                            expected: exp,
                            got: received,
                        });
                    }
                }
                if buf.capacity() == 0 {
                    buf = back_rx
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(BATCH_BYTES + BATCH_BYTES / 2));
                }
                buf.extend_from_slice(&chunk);
                if buf.len() < BATCH_BYTES {
                    continue;
                }
            }
            if buf.is_empty() {
                break;
            }
            self.spool.write(&buf).map_err(AppendError::Io)?;
            self.size += buf.len() as u64;
            unsynced += buf.len() as u64;
            if unsynced >= WRITEBACK_BYTES {
                if let Spool::File { file: Some(f), .. } = &self.spool {
                    start_writeback(f, self.size - unsynced, unsynced);
                }
                unsynced = 0;
            }
            let full = std::mem::take(&mut buf);
            if done && hash_tx.is_none() {
                // Small body: hash it here, no thread hand-off.
                self.hasher.update(&full);
                break;
            }
            let tx = hash_tx.get_or_insert_with(|| {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(BATCH_QUEUE);
                let mut hasher = self.hasher.clone();
                let back_tx = back_tx.clone();
                hash_task = Some(tokio::task::spawn_blocking(move || {
                    while let Some(mut b) = rx.blocking_recv() {
                        hasher.update(&b);
                        b.clear();
                        let _ = back_tx.send(b);
                    }
                    hasher
                }));
                tx
            });
            if tx.send(full).await.is_err() {
                return Err(AppendError::Io(io::Error::other("hasher stopped")));
            }
            if done {
                break;
            }
        }
        drop(hash_tx);
        if let Some(task) = hash_task {
            self.hasher = task
                .await
                .map_err(|e| AppendError::Io(io::Error::other(e)))?;
        }
        let got = self.size - size0;
        if let Some(exp) = expected {
            if got != exp {
                return Err(AppendError::Length { expected: exp, got });
            }
        }
        Ok(got)
    }

    /// The digest of the content so far, under `alg` (re-reads the content when
    /// `alg` is not the session's algorithm).
    pub fn digest(&self, alg: Algorithm) -> io::Result<Digest> {
        if self.hasher.algorithm() == alg {
            return Ok(self.hasher.clone().finish());
        }
        let path = match &self.spool {
            Spool::Memory(v) => return Ok(alg.digest(v)),
            Spool::File { path, .. } => path,
        };
        blocking(|| {
            let mut h = alg.hasher();
            let mut f = std::fs::File::open(path)?;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = io::Read::read(&mut f, &mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(h.finish())
        })
    }

    pub(super) fn discard(&mut self) {
        self.closed = true;
        self.spool.discard();
    }

    /// The content spooled so far (tests).
    #[cfg(test)]
    pub(super) fn spooled(&self) -> Vec<u8> {
        match &self.spool {
            Spool::File { path, .. } => std::fs::read(path).unwrap(),
            Spool::Memory(v) => v.clone(),
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.closed {
            self.discard();
        }
    }
}
