//! Storage: repository metadata (blob links, manifests, tags), blob content
//! and upload sessions.
//!
//! Metadata always lives in memory behind one `RwLock` (no disk read on any
//! request path); it is never held across an `.await`. Blob content lives in
//! a [`Backend`]: [`MemoryBackend`] (`Bytes` per blob) or [`DiskBackend`]
//! (content-addressed files, per-repository metadata persisted with atomic
//! writes: temp file + fsync + rename, reloaded on startup). Upload sessions
//! stream into temp files, each behind its own async mutex.
//!
//! Files: this one (metadata types, the [`Store`] and its session registry), `backend.rs`
//! (the [`Backend`] trait, [`MemoryBackend`], [`DiskBackend`], atomic writes), `upload.rs`
//! ([`Upload`]: spooling, the pipelined hashing append, checkpoints), `tests.rs`.

mod backend;
mod upload;

pub use backend::{Backend, DiskBackend, MemoryBackend};
use upload::Spool;
pub use upload::{AppendError, Checkpoint, Spooled, Upload};

use crate::spec::{Algorithm, Digest};
use axum::http::HeaderValue;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::PathBuf;
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
mod tests;
