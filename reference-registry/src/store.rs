//! Storage: repository metadata (blob links, manifests, tags), blob content
//! and upload sessions.
//!
//! Metadata always lives in memory behind one `RwLock` (no disk read on any
//! request path); it is never held across an `.await`. Blob content lives in
//! a [`Backend`]: [`MemoryBackend`] (`Bytes` per blob) or [`DiskBackend`]
//! (content-addressed files, per-repository metadata persisted with atomic
//! writes: temp file + fsync + rename, reloaded on startup). Upload sessions
//! stream into temp files, each behind its own async mutex.

use crate::spec::{Algorithm, Digest, Hasher};
use axum::http::HeaderValue;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

/// A stored manifest, with what the handlers need precomputed.
#[derive(Debug)]
pub struct ManifestRec {
    pub bytes: Bytes,
    pub media_type: String,
    pub media_type_hv: HeaderValue,
    pub digest_hv: HeaderValue,
    /// `subject.digest`, if any.
    pub subject: Option<String>,
    /// The referrers `artifactType`: `artifactType`, else `config.mediaType`.
    pub artifact_type: Option<String>,
    /// `annotations`, copied into referrers descriptors.
    pub annotations: Option<serde_json::Value>,
}

impl ManifestRec {
    /// Builds a record from exact bytes (already validated, or reloaded).
    pub fn new(bytes: Bytes, media_type: &str, digest: &Digest) -> ManifestRec {
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        ManifestRec::from_parsed(bytes, &json, media_type, digest)
    }

    /// [`ManifestRec::new`] from bytes the caller has already parsed as `json` (the PUT
    /// route validates the same document: one parse per push).
    pub fn from_parsed(
        bytes: Bytes,
        json: &serde_json::Value,
        media_type: &str,
        digest: &Digest,
    ) -> ManifestRec {
        let str_field = |v: &serde_json::Value, k: &str| {
            v.get(k)
                .and_then(|x| x.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let subject = json.get("subject").and_then(|s| str_field(s, "digest"));
        let artifact_type = str_field(json, "artifactType").or_else(|| {
            json.get("config")
                .filter(|c| c.is_object())
                .and_then(|c| str_field(c, "mediaType"))
        });
        let annotations = json.get("annotations").filter(|a| a.is_object()).cloned();
        ManifestRec {
            bytes,
            media_type: media_type.to_owned(),
            media_type_hv: HeaderValue::from_str(media_type)
                .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
            digest_hv: HeaderValue::from_str(digest.as_str())
                .unwrap_or_else(|_| HeaderValue::from_static("")),
            subject,
            artifact_type,
            annotations,
        }
    }
}

/// One repository.
#[derive(Debug, Default)]
pub struct Repo {
    /// Digests of blobs visible in this repository.
    pub blobs: HashSet<String>,
    /// Manifests by digest.
    pub manifests: HashMap<String, Arc<ManifestRec>>,
    /// Tag -> manifest digest, in byte order.
    pub tags: BTreeMap<String, String>,
    /// Manifests the referrers listing leaves out (fault `referrers_lost_update` only).
    pub hidden_referrers: HashSet<String>,
}

/// All repositories. A repository exists once something was committed to it.
#[derive(Debug, Default)]
pub struct Meta {
    pub repos: HashMap<String, Repo>,
}

/// Blob content as a backend hands it out.
pub enum BlobContent {
    /// In memory; cloning is cheap.
    Bytes(Bytes),
    /// A file to stream.
    File { path: PathBuf, size: u64 },
}

impl BlobContent {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            BlobContent::Bytes(b) => b.len() as u64,
            BlobContent::File { size, .. } => *size,
        }
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where content and metadata are kept.
pub trait Backend: Send + Sync + 'static {
    /// Directory for upload temp files; `None`: uploads are spooled in memory (the content
    /// ends up in memory anyway, so a file per upload would only cost creates and unlinks).
    fn upload_dir(&self) -> Option<&Path>;
    /// Takes ownership of a finished upload's content as the content of `digest`.
    fn commit_blob(&self, digest: &Digest, content: Spooled) -> io::Result<()>;
    /// Content of a blob (any repository).
    fn blob(&self, digest: &str) -> Option<BlobContent>;
    /// Persists manifest bytes (no-op in memory: the record holds them).
    fn put_manifest(&self, digest: &Digest, bytes: &Bytes) -> io::Result<()>;
    /// Persists one repository's metadata (no-op in memory).
    fn save_repo(&self, name: &str, repo: &Repo) -> io::Result<()>;
    /// Loads all repositories (empty in memory).
    fn load(&self) -> io::Result<HashMap<String, Repo>>;
    /// Replaces a blob's content (fault `blob_commit_early` only; memory storage).
    fn overwrite_blob(&self, _digest: &Digest, _data: Bytes) {}
    /// Removes a repository's persisted metadata (no-op in memory).
    fn remove_repo(&self, _name: &str) -> io::Result<()> {
        Ok(())
    }
    /// Drops the content of blobs `keep` does not name that are older than the previous call
    /// (a blob committed but not linked yet survives one round); returns how many went.
    /// Content on disk stays (it is not what bounds a long run).
    fn forget_blobs(&self, _keep: &HashSet<String>) -> usize {
        0
    }
}

/// Everything in memory, uploads included.
pub struct MemoryBackend {
    /// Content by digest, with the `forget_blobs` round it arrived in.
    blobs: RwLock<HashMap<String, (Bytes, u64)>>,
    round: std::sync::atomic::AtomicU64,
}

impl MemoryBackend {
    pub fn new() -> io::Result<MemoryBackend> {
        Ok(MemoryBackend {
            blobs: RwLock::default(),
            round: std::sync::atomic::AtomicU64::new(0),
        })
    }
}

impl Backend for MemoryBackend {
    fn upload_dir(&self) -> Option<&Path> {
        None
    }
    fn overwrite_blob(&self, digest: &Digest, data: Bytes) {
        let round = self.round.load(std::sync::atomic::Ordering::SeqCst);
        write_lock(&self.blobs).insert(digest.as_str().to_owned(), (data, round));
    }

    fn commit_blob(&self, digest: &Digest, content: Spooled) -> io::Result<()> {
        let data = match content {
            Spooled::Memory(v) => Bytes::from(v),
            Spooled::File(temp) => {
                let data = blocking(|| std::fs::read(&temp));
                let _ = std::fs::remove_file(&temp);
                Bytes::from(data?)
            }
        };
        let round = self.round.load(std::sync::atomic::Ordering::SeqCst);
        write_lock(&self.blobs)
            .entry(digest.as_str().to_owned())
            .and_modify(|(_, r)| *r = round)
            .or_insert((data, round));
        Ok(())
    }
    fn blob(&self, digest: &str) -> Option<BlobContent> {
        read_lock(&self.blobs)
            .get(digest)
            .map(|(b, _)| BlobContent::Bytes(b.clone()))
    }
    fn put_manifest(&self, _: &Digest, _: &Bytes) -> io::Result<()> {
        Ok(())
    }
    fn save_repo(&self, _: &str, _: &Repo) -> io::Result<()> {
        Ok(())
    }
    fn load(&self) -> io::Result<HashMap<String, Repo>> {
        Ok(HashMap::new())
    }
    fn forget_blobs(&self, keep: &HashSet<String>) -> usize {
        let round = self.round.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut blobs = write_lock(&self.blobs);
        let before = blobs.len();
        blobs.retain(|d, (_, r)| keep.contains(d) || *r >= round);
        before - blobs.len()
    }
}

/// Files under a root directory:
/// `blobs/<alg>/<hex>` (blob and manifest content),
/// `repositories/<name>/_meta.json` (per-repository metadata),
/// `uploads/<uuid>` (upload sessions; not persisted across restarts).
pub struct DiskBackend {
    root: PathBuf,
    uploads: PathBuf,
    /// digest -> size of every content file, loaded at startup.
    sizes: RwLock<HashMap<String, u64>>,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct RepoFile {
    blobs: Vec<String>,
    /// digest -> media type
    manifests: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
}

const META_FILE: &str = "_meta.json";
const TMP_MARK: &str = ".tmp-";

impl DiskBackend {
    pub fn open(root: &Path) -> io::Result<DiskBackend> {
        let uploads = root.join("uploads");
        std::fs::create_dir_all(root.join("blobs"))?;
        std::fs::create_dir_all(root.join("repositories"))?;
        // Upload sessions do not survive a restart.
        let _ = std::fs::remove_dir_all(&uploads);
        std::fs::create_dir_all(&uploads)?;
        let backend = DiskBackend {
            root: root.to_owned(),
            uploads,
            sizes: RwLock::default(),
        };
        let mut sizes = HashMap::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = backend.root.join("blobs").join(alg.as_str());
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in rd.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.contains(TMP_MARK) {
                    let _ = std::fs::remove_file(entry.path());
                    continue;
                }
                let full = format!("{}:{}", alg.as_str(), name);
                if Digest::parse(&full).is_ok() {
                    if let Ok(md) = entry.metadata() {
                        sizes.insert(full, md.len());
                    }
                }
            }
        }
        *write_lock(&backend.sizes) = sizes;
        Ok(backend)
    }

    fn content_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    fn load_dir(&self, dir: &Path, prefix: &str, out: &mut HashMap<String, Repo>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in rd.flatten() {
            let fname = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if fname.contains(TMP_MARK) {
                let _ = std::fs::remove_file(&path);
            } else if path.is_dir() {
                let name = if prefix.is_empty() {
                    fname
                } else {
                    format!("{prefix}/{fname}")
                };
                self.load_dir(&path, &name, out);
            } else if fname == META_FILE && !prefix.is_empty() {
                match self.load_repo(&path) {
                    Ok(repo) => {
                        out.insert(prefix.to_owned(), repo);
                    }
                    Err(e) => tracing::warn!("skipping {}: {e}", path.display()),
                }
            }
        }
    }

    fn load_repo(&self, path: &Path) -> io::Result<Repo> {
        let file: RepoFile = serde_json::from_slice(&std::fs::read(path)?)?;
        let mut repo = Repo {
            blobs: file.blobs.into_iter().collect(),
            ..Repo::default()
        };
        for (d, mt) in file.manifests {
            let Ok(digest) = Digest::parse(&d) else {
                continue;
            };
            let bytes = Bytes::from(std::fs::read(self.content_path(&digest))?);
            repo.manifests
                .insert(d, Arc::new(ManifestRec::new(bytes, &mt, &digest)));
        }
        repo.tags = file
            .tags
            .into_iter()
            .filter(|(_, d)| repo.manifests.contains_key(d))
            .collect();
        Ok(repo)
    }
}

/// Writes `data` to `path` atomically: temp file in the same directory,
/// fsync, rename, fsync of the directory.
fn atomic_write(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let fname = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        "{fname}{TMP_MARK}{}",
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Backend for DiskBackend {
    fn upload_dir(&self) -> Option<&Path> {
        Some(&self.uploads)
    }
    fn commit_blob(&self, digest: &Digest, content: Spooled) -> io::Result<()> {
        let dest = self.content_path(digest);
        let size = blocking(|| {
            let dir = dest.parent().unwrap_or(Path::new("."));
            match content {
                Spooled::File(temp) if dest.exists() => {
                    let _ = std::fs::remove_file(temp);
                }
                Spooled::File(temp) => {
                    std::fs::create_dir_all(dir)?;
                    let moved = std::fs::File::open(&temp)
                        .and_then(|f| f.sync_all())
                        .and_then(|()| std::fs::rename(&temp, &dest));
                    if moved.is_err() {
                        let _ = std::fs::remove_file(&temp);
                    }
                    moved?;
                    sync_dir(dir);
                }
                Spooled::Memory(_) if dest.exists() => {}
                Spooled::Memory(data) => atomic_write(&dest, &data)?,
            }
            std::fs::metadata(&dest).map(|m| m.len())
        })?;
        write_lock(&self.sizes).insert(digest.as_str().to_owned(), size);
        Ok(())
    }
    fn blob(&self, digest: &str) -> Option<BlobContent> {
        let size = *read_lock(&self.sizes).get(digest)?;
        let digest = Digest::parse(digest).ok()?;
        Some(BlobContent::File {
            path: self.content_path(&digest),
            size,
        })
    }
    fn put_manifest(&self, digest: &Digest, bytes: &Bytes) -> io::Result<()> {
        let path = self.content_path(digest);
        if !path.exists() {
            blocking(|| atomic_write(&path, bytes))?;
            write_lock(&self.sizes).insert(digest.as_str().to_owned(), bytes.len() as u64);
        }
        Ok(())
    }
    fn save_repo(&self, name: &str, repo: &Repo) -> io::Result<()> {
        let mut blobs: Vec<String> = repo.blobs.iter().cloned().collect();
        blobs.sort();
        let file = RepoFile {
            blobs,
            manifests: repo
                .manifests
                .iter()
                .map(|(d, m)| (d.clone(), m.media_type.clone()))
                .collect(),
            tags: repo.tags.clone(),
        };
        let data = serde_json::to_vec(&file)?;
        let path = self.root.join("repositories").join(name).join(META_FILE);
        blocking(|| atomic_write(&path, &data))
    }
    fn load(&self) -> io::Result<HashMap<String, Repo>> {
        let mut out = HashMap::new();
        self.load_dir(&self.root.join("repositories"), "", &mut out);
        Ok(out)
    }
    fn remove_repo(&self, name: &str) -> io::Result<()> {
        let path = self.root.join("repositories").join(name).join(META_FILE);
        match blocking(|| std::fs::remove_file(&path)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Runs blocking file I/O: on a multi-threaded runtime via
/// `block_in_place` (so other tasks move to another worker), else inline.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// An upload session: a temp file plus an incremental hasher.
pub struct Upload {
    pub repo: String,
    pub id: String,
    spool: Spool,
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
enum Spool {
    /// A temp file (`file` is `None` once closed).
    File {
        path: PathBuf,
        file: Option<std::fs::File>,
    },
    /// Memory (storage that keeps content in memory anyway).
    Memory(Vec<u8>),
}

/// A finished upload's content, handed to [`Backend::commit_blob`].
pub enum Spooled {
    /// A closed temp file the backend takes over (moves or removes).
    File(PathBuf),
    Memory(Vec<u8>),
}

impl Spool {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
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
    fn take(&mut self) -> Spooled {
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
const BATCH_BYTES: usize = 1 << 20;
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
    fn create(dir: Option<&Path>, repo: &str, alg: Algorithm) -> io::Result<Upload> {
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

    fn discard(&mut self) {
        self.closed = true;
        self.spool.discard();
    }

    /// The content spooled so far (tests).
    #[cfg(test)]
    fn spooled(&self) -> Vec<u8> {
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

/// Handle to a registered upload session.
pub type UploadHandle = Arc<tokio::sync::Mutex<Upload>>;

/// Upload sessions unused for this long are dropped (the spec: the server
/// SHOULD eventually time out unfinished uploads).
pub const UPLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// Registered sessions, with their last use.
#[derive(Default)]
struct Sessions {
    map: HashMap<String, (UploadHandle, Instant)>,
    last_sweep: Option<Instant>,
}

impl Sessions {
    /// Drops idle sessions nobody holds; at most once a minute.
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(60))
        {
            return;
        }
        self.last_sweep = Some(now);
        self.map.retain(|_, (handle, used)| {
            if now.duration_since(*used) < UPLOAD_IDLE_TIMEOUT {
                return true;
            }
            match handle.try_lock() {
                Ok(mut up) => {
                    up.discard();
                    false
                }
                Err(_) => true,
            }
        });
    }
}

/// What [`Store::purge`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub repos: usize,
    pub uploads: usize,
    pub blobs: usize,
}

/// The whole store: metadata, backend, upload sessions.
pub struct Store {
    meta: RwLock<Meta>,
    backend: Box<dyn Backend>,
    uploads: Mutex<Sessions>,
    /// Held (shared) from a blob's commit to its link into a repository, and (exclusive) by
    /// `purge`: content committed but not linked yet is never forgotten.
    commits: RwLock<()>,
}

impl Store {
    /// Opens a store on a backend, loading persisted metadata.
    pub fn open(backend: Box<dyn Backend>) -> io::Result<Store> {
        let repos = backend.load()?;
        Ok(Store {
            meta: RwLock::new(Meta { repos }),
            backend,
            uploads: Mutex::default(),
            commits: RwLock::default(),
        })
    }

    /// Shared read access to all metadata. Never hold across `.await`.
    pub fn read(&self) -> RwLockReadGuard<'_, Meta> {
        read_lock(&self.meta)
    }

    /// Runs `f` on repository `name` under the write lock and persists it
    /// when `f` reports a change. Without `create`, a missing repository
    /// yields `Ok(None)` and `f` is not called; with it, `f` runs on a fresh
    /// repository that is kept only if `f` reports a change.
    pub fn update<R>(
        &self,
        name: &str,
        create: bool,
        f: impl FnOnce(&mut Repo) -> (R, bool),
    ) -> io::Result<Option<R>> {
        let mut meta = write_lock(&self.meta);
        if let Some(repo) = meta.repos.get_mut(name) {
            let (r, changed) = f(repo);
            if changed {
                self.backend.save_repo(name, repo)?;
            }
            return Ok(Some(r));
        }
        if !create {
            return Ok(None);
        }
        // A repository comes into existence only when `f` changes it.
        let mut repo = Repo::default();
        let (r, changed) = f(&mut repo);
        if changed {
            self.backend.save_repo(name, &repo)?;
            meta.repos.insert(name.to_owned(), repo);
        }
        Ok(Some(r))
    }

    /// Blob content, if the backend has it (visibility is checked by the caller).
    pub fn blob(&self, digest: &str) -> Option<BlobContent> {
        self.backend.blob(digest)
    }

    /// Persists manifest content.
    pub fn put_manifest_content(&self, digest: &Digest, bytes: &Bytes) -> io::Result<()> {
        self.backend.put_manifest(digest, bytes)
    }

    /// A new, unregistered upload (used by monolithic POST).
    pub fn temp_upload(&self, repo: &str, alg: Algorithm) -> io::Result<Upload> {
        Upload::create(self.backend.upload_dir(), repo, alg)
    }

    /// A new, registered upload session; returns its id.
    pub fn start_upload(&self, repo: &str, alg: Algorithm) -> io::Result<String> {
        let up = self.temp_upload(repo, alg)?;
        let id = up.id.clone();
        let now = Instant::now();
        let mut sessions = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        sessions.sweep(now);
        sessions
            .map
            .insert(id.clone(), (Arc::new(tokio::sync::Mutex::new(up)), now));
        Ok(id)
    }

    /// Upload sessions open now (registered, not committed or cancelled).
    pub fn open_uploads(&self) -> usize {
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    /// The session `id` if it exists (the caller checks its repository).
    pub fn upload(&self, id: &str) -> Option<UploadHandle> {
        let mut sessions = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        let (handle, used) = sessions.map.get_mut(id)?;
        *used = Instant::now();
        Some(handle.clone())
    }

    /// Forgets session `id` (its upload is being cancelled or committed).
    fn unregister(&self, id: &str) {
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .remove(id);
    }

    /// Unregisters and deletes a session (cancel, or failed completion).
    pub fn cancel_upload(&self, up: &mut Upload) {
        self.unregister(&up.id);
        up.discard();
    }

    /// Commits the upload's content as `digest` (already verified), links it
    /// into the upload's repository and closes the session.
    pub fn commit_upload(&self, up: &mut Upload, digest: &Digest) -> io::Result<()> {
        self.unregister(&up.id);
        // Close the spool; the backend decides about durability (and removes a temp file it
        // does not take).
        let content = up.spool.take();
        up.closed = true;
        let _committing = read_lock(&self.commits);
        self.backend.commit_blob(digest, content)?;
        self.link_blob(&up.repo, digest)
    }

    /// [`Store::commit_upload`] with fault `blob_commit_early`: a blob new to the repository
    /// (memory storage) is linked with the first half of its content, the rest lands after
    /// `RACE_PAUSE`, and only then is the commit acknowledged (a client reading it meanwhile
    /// gets the half).
    pub async fn commit_upload_early(&self, up: &mut Upload, digest: &Digest) -> io::Result<()> {
        let linked = self
            .read()
            .repos
            .get(&up.repo)
            .is_some_and(|r| r.blobs.contains(digest.as_str()));
        if linked || !matches!(&up.spool, Spool::Memory(v) if v.len() > 1) {
            return self.commit_upload(up, digest);
        }
        self.unregister(&up.id);
        let Spooled::Memory(v) = up.spool.take() else {
            return Err(io::Error::other("a memory spool took out a file"));
        };
        let full = Bytes::from(v);
        up.closed = true;
        {
            // As in `commit_upload`: content committed but not linked yet is never purged
            // (the guard is not held across the pause).
            let _committing = read_lock(&self.commits);
            self.backend
                .overwrite_blob(digest, full.slice(..full.len() / 2));
            self.link_blob(&up.repo, digest)?;
        }
        crate::faults::race_pause().await;
        self.backend.overwrite_blob(digest, full);
        Ok(())
    }

    /// Removes every repository whose name starts with `prefix`, their upload sessions, and the
    /// content (memory storage) no remaining repository refers to.
    pub fn purge(&self, prefix: &str) -> io::Result<Purged> {
        let _no_commits = write_lock(&self.commits);
        let mut out = Purged::default();
        let keep: HashSet<String> = {
            let mut meta = write_lock(&self.meta);
            let gone: Vec<String> = meta
                .repos
                .keys()
                .filter(|n| n.starts_with(prefix))
                .cloned()
                .collect();
            for name in &gone {
                meta.repos.remove(name);
                self.backend.remove_repo(name)?;
            }
            out.repos = gone.len();
            meta.repos
                .values()
                .flat_map(|r| r.blobs.iter().cloned())
                .collect()
        };
        {
            let mut sessions = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
            sessions
                .map
                .retain(|_, (handle, _)| match handle.try_lock() {
                    Ok(mut up) if up.repo.starts_with(prefix) => {
                        up.discard();
                        out.uploads += 1;
                        false
                    }
                    _ => true,
                });
        }
        out.blobs = self.backend.forget_blobs(&keep);
        Ok(out)
    }

    /// Makes a blob visible in a repository (creating the repository).
    pub fn link_blob(&self, repo: &str, digest: &Digest) -> io::Result<()> {
        self.update(repo, true, |r| {
            let changed = !r.blobs.contains(digest.as_str());
            if changed {
                r.blobs.insert(digest.as_str().to_owned());
            }
            ((), changed)
        })
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_drops_repositories_sessions_and_unreferenced_content() {
        let store = Store::open(Box::new(MemoryBackend::new().unwrap())).unwrap();
        let d = |s: &str| Digest::parse(&format!("sha256:{}", s.repeat(64))).unwrap();
        let (a, b) = (d("a"), d("b"));
        for (digest, repo) in [(&a, "ns1/r1"), (&b, "ns2/r1")] {
            store
                .backend
                .commit_blob(digest, Spooled::Memory(b"x".to_vec()))
                .unwrap();
            store.link_blob(repo, digest).unwrap();
        }
        let open = store.start_upload("ns1/r2", Algorithm::Sha256).unwrap();
        // The first round keeps content committed since the previous one (none before).
        let p = store.purge("ns1/").unwrap();
        assert_eq!((p.repos, p.uploads, p.blobs), (1, 1, 0));
        assert!(store.upload(&open).is_none());
        assert!(store.read().repos.contains_key("ns2/r1"));
        // The next round drops what no repository refers to any more.
        let p = store.purge("ns1/").unwrap();
        assert_eq!((p.repos, p.blobs), (0, 1));
        assert!(store.blob(a.as_str()).is_none());
        assert!(store.blob(b.as_str()).is_some());
    }

    #[test]
    fn idle_sessions_are_swept() {
        let store = Store::open(Box::new(MemoryBackend::new().unwrap())).unwrap();
        let id = store.start_upload("r", Algorithm::Sha256).unwrap();
        let kept = store.start_upload("r", Algorithm::Sha256).unwrap();
        assert!(store.upload(&id).is_some());
        let later = Instant::now() + UPLOAD_IDLE_TIMEOUT + Duration::from_secs(120);
        {
            let mut s = store.uploads.lock().unwrap();
            // `kept` was used recently (relative to `later`).
            s.map.get_mut(&kept).unwrap().1 = later;
            s.last_sweep = None;
            s.sweep(later);
        }
        assert!(store.upload(&id).is_none());
        assert!(store.upload(&kept).is_some());
    }

    #[test]
    fn disk_metadata_survives_reopen_and_temp_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let d = Algorithm::Sha256.digest(b"x");
        {
            let store = Store::open(Box::new(DiskBackend::open(dir.path()).unwrap())).unwrap();
            let mut up = store.temp_upload("a/b", Algorithm::Sha256).unwrap();
            up.spool.write(b"x").unwrap();
            store.commit_upload(&mut up, &d).unwrap();
            store
                .update("a/b", false, |r| {
                    r.tags.insert("t".into(), "nothing".into());
                    ((), true)
                })
                .unwrap();
        }
        std::fs::write(
            dir.path().join("repositories/a/b/_meta.json.tmp-x"),
            b"junk",
        )
        .unwrap();
        let store = Store::open(Box::new(DiskBackend::open(dir.path()).unwrap())).unwrap();
        let meta = store.read();
        let repo = &meta.repos["a/b"];
        assert!(repo.blobs.contains(d.as_str()));
        // A tag pointing at an unknown manifest is dropped on load.
        assert!(repo.tags.is_empty());
        assert_eq!(store.blob(d.as_str()).unwrap().len(), 1);
        assert!(!dir
            .path()
            .join("repositories/a/b/_meta.json.tmp-x")
            .exists());
    }

    fn frames(data: &[u8], frame: usize) -> Vec<Result<Bytes, io::Error>> {
        data.chunks(frame)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect()
    }

    fn file_len(up: &Upload) -> u64 {
        up.spooled().len() as u64
    }

    /// A store of each kind: memory (uploads spooled in memory) and disk (temp files).
    fn both_stores() -> Vec<(Store, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().unwrap();
        vec![
            (
                Store::open(Box::new(MemoryBackend::new().unwrap())).unwrap(),
                None,
            ),
            (
                Store::open(Box::new(DiskBackend::open(dir.path()).unwrap())).unwrap(),
                Some(dir),
            ),
        ]
    }

    /// Bodies of many batches go through the hashing thread; small ones are
    /// hashed inline. Either way the digest and file match the bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pipelined_append_hashes_and_writes_everything() {
        let data: Vec<u8> = (0..(5 * BATCH_BYTES + 12345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let stores = both_stores();
        for ((store, _dir), alg) in stores
            .iter()
            .flat_map(|s| [Algorithm::Sha256, Algorithm::Sha512].map(|a| (s, a)))
        {
            let mut up = store.temp_upload("r", alg).unwrap();
            // A small chunk, then a large one in uneven frames.
            let small = axum::body::Body::from(data[..100].to_vec());
            assert_eq!(up.append(small, Some(100)).await.unwrap(), 100);
            let rest = &data[100..];
            let body = axum::body::Body::from_stream(futures::stream::iter(frames(rest, 300_001)));
            let n = up.append(body, Some(rest.len() as u64)).await.unwrap();
            assert_eq!(n, rest.len() as u64);
            assert_eq!(up.size(), data.len() as u64);
            assert_eq!(file_len(&up), data.len() as u64);
            assert_eq!(up.spooled(), data);
            assert_eq!(up.digest(alg).unwrap(), alg.digest(&data));
            // The other algorithm re-reads the file.
            let other = match alg {
                Algorithm::Sha256 => Algorithm::Sha512,
                Algorithm::Sha512 => Algorithm::Sha256,
            };
            assert_eq!(up.digest(other).unwrap(), other.digest(&data));
        }
    }

    /// A chunk longer or shorter than announced, a body error, or a request
    /// dropped half-way leaves the upload exactly as it was.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_or_dropped_append_rolls_back() {
        for (store, _dir) in both_stores() {
            rolls_back_on(&store).await;
        }
    }

    async fn rolls_back_on(store: &Store) {
        let head = b"0123456789".to_vec();
        let big: Vec<u8> = (0..(3 * BATCH_BYTES + 7)).map(|i| i as u8).collect();
        let mut up = store.temp_upload("r", Algorithm::Sha256).unwrap();
        up.append(axum::body::Body::from(head.clone()), None)
            .await
            .unwrap();
        let check = |up: &Upload| {
            assert_eq!(up.size(), head.len() as u64);
            assert_eq!(file_len(up), head.len() as u64);
            assert_eq!(
                up.digest(Algorithm::Sha256).unwrap(),
                Algorithm::Sha256.digest(&head)
            );
        };
        // Too long (detected while streaming) and too short (at the end).
        for exp in [big.len() as u64 - 1, big.len() as u64 + 1] {
            let body = axum::body::Body::from_stream(futures::stream::iter(frames(&big, 500_000)));
            assert!(matches!(
                up.append(body, Some(exp)).await,
                Err(AppendError::Length { .. })
            ));
            check(&up);
        }
        // A body error after several batches.
        let mut fr = frames(&big, 500_000);
        fr.push(Err(io::Error::other("reset")));
        let body = axum::body::Body::from_stream(futures::stream::iter(fr));
        assert!(matches!(
            up.append(body, None).await,
            Err(AppendError::Body)
        ));
        check(&up);
        // Dropped half-way: the body stalls after several batches.
        let stalled = futures::stream::iter(frames(&big, 500_000))
            .chain(futures::stream::pending::<Result<Bytes, io::Error>>());
        let body = axum::body::Body::from_stream(stalled);
        let res = tokio::time::timeout(Duration::from_millis(300), up.append(body, None)).await;
        assert!(res.is_err());
        check(&up);
        // And it still works afterwards.
        up.append(axum::body::Body::from(big.clone()), None)
            .await
            .unwrap();
        let mut all = head.clone();
        all.extend_from_slice(&big);
        assert_eq!(
            up.digest(Algorithm::Sha256).unwrap(),
            Algorithm::Sha256.digest(&all)
        );
        assert_eq!(up.spooled(), all);
    }
}
