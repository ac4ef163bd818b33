//! Where blob content and repository metadata are kept: the [`Backend`] trait,
//! [`MemoryBackend`] (everything in memory) and [`DiskBackend`] (content-addressed files,
//! per-repository metadata written atomically: temp file + fsync + rename).

use super::{blocking, read_lock, write_lock, BlobContent, ManifestRec, Repo, Spooled};
use crate::spec::{Algorithm, Digest};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

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
