//! `ModelState`: what a spec-exact registry holds after each op (blobs, manifests and tags per
//! repository; open upload sessions). Operations change it through the primitives here (see
//! `ops`, where each family's `apply` says what its op does to the state).
//!
//! Modelling choices (the oracle compares registries against these):
//! - Storage is content-addressed: blobs and manifests are keyed by digest string, so two
//!   symbols with identical bytes (e.g. two empty blobs) are the same object.
//! - A manifest pushed by digest is stored under that digest; pushed by tag, under the sha256 of
//!   its bytes (a registry cannot know any other algorithm was meant).
//! - A repository "exists" once anything (blob, mount, manifest) was stored in it, and keeps
//!   existing after deletes.
//! - A session whose state the spec leaves open (after a failed completion) is *uncertain*: no
//!   valid op is generated on it and the oracle does not judge ops on it.

use crate::vocab::content::Content;
use crate::vocab::exchange::ReferrerFacts;
use crate::vocab::{BlobId, DigestAlgo, ManifestId, Reference, Repo, Session};
use std::collections::{BTreeMap, BTreeSet};

/// An open upload session as the model sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionState {
    pub repo: Repo,
    pub blob: BlobId,
    /// Bytes accepted so far (the next chunk must start here).
    pub offset: u32,
    /// The `digest-algorithm` the session was opened with.
    pub algo: Option<DigestAlgo>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RepoState {
    /// Blob digests linked into the repository.
    blobs: BTreeSet<String>,
    /// Manifest digest -> the manifest symbol last stored under it.
    manifests: BTreeMap<String, ManifestId>,
    /// Tag -> manifest digest.
    tags: BTreeMap<String, String>,
    /// Tags whose manifest was deleted by digest: a registry may keep listing them (the spec
    /// says only that pulls by them answer 404).
    /// Tags whose manifest was deleted by digest, with that digest.
    dangling: BTreeMap<String, String>,
}

/// What a spec-exact registry holds after each op.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelState {
    repos: BTreeMap<Repo, RepoState>,
    sessions: BTreeMap<Session, SessionState>,
    closed: BTreeSet<Session>,
    uncertain: BTreeSet<Session>,
    /// Digest of each blob symbol (filled from the content by `learn`).
    blob_digests: Vec<String>,
    /// (own digest, sha256) of each manifest symbol.
    manifest_digests: Vec<(String, String)>,
}

impl ModelState {
    pub fn new() -> ModelState {
        ModelState::default()
    }

    /// Caches the content's digests (the queries that take no `Content` need them).
    pub fn learn(&mut self, content: &Content) {
        if self.blob_digests.len() != content.blob_count() {
            self.blob_digests = (0..content.blob_count())
                .map(|i| {
                    content
                        .blob_digest(BlobId(i as u16))
                        .unwrap_or_default()
                        .to_string()
                })
                .collect();
        }
        if self.manifest_digests.len() != content.manifest_count() {
            self.manifest_digests = (0..content.manifest_count())
                .map(|i| {
                    let m = ManifestId(i as u16);
                    (
                        content.manifest_digest(m).unwrap_or_default().to_string(),
                        content.manifest_sha256(m).unwrap_or_default().to_string(),
                    )
                })
                .collect();
        }
    }

    fn repo_mut(&mut self, repo: Repo) -> &mut RepoState {
        self.repos.entry(repo).or_default()
    }

    // ---- mutations ----

    /// Links a blob (by digest) into `repo`, creating the repository.
    pub fn link_blob(&mut self, repo: Repo, digest: &str) {
        self.repo_mut(repo).blobs.insert(digest.to_string());
    }

    /// Unlinks a blob from `repo`; `false` when it was not there.
    pub fn unlink_blob(&mut self, repo: Repo, digest: &str) -> bool {
        self.repos
            .get_mut(&repo)
            .is_some_and(|r| r.blobs.remove(digest))
    }

    /// Stores `manifest` under `digest` in `repo`, creating the repository.
    pub fn store_manifest(&mut self, repo: Repo, digest: &str, manifest: ManifestId) {
        self.repo_mut(repo)
            .manifests
            .insert(digest.to_string(), manifest);
    }

    /// Points `tag` at the manifest stored under `digest`.
    pub fn set_tag(&mut self, repo: Repo, tag: &str, digest: &str) {
        let r = self.repo_mut(repo);
        r.dangling.remove(tag);
        r.tags.insert(tag.to_string(), digest.to_string());
    }

    /// Deletes the manifest stored under `digest` and the tags pointing to it; `false` when it
    /// was not there.
    pub fn delete_manifest(&mut self, repo: Repo, digest: &str) -> bool {
        let Some(r) = self.repos.get_mut(&repo) else {
            return false;
        };
        if r.manifests.remove(digest).is_none() {
            return false;
        }
        let gone: Vec<String> = r
            .tags
            .iter()
            .filter(|(_, v)| *v == digest)
            .map(|(k, _)| k.clone())
            .collect();
        for t in gone {
            r.tags.remove(&t);
            r.dangling.insert(t, digest.to_string());
        }
        true
    }

    /// Deletes a tag; `false` when it was not there.
    pub fn delete_tag(&mut self, repo: Repo, tag: &str) -> bool {
        self.repos.get_mut(&repo).is_some_and(|r| {
            r.dangling.remove(tag);
            r.tags.remove(tag).is_some()
        })
    }

    /// Opens (or reopens) a session slot.
    pub fn open_session(&mut self, session: Session, state: SessionState) {
        self.sessions.insert(session, state);
        self.closed.remove(&session);
        self.uncertain.remove(&session);
    }

    /// The open session in this slot, for updates.
    pub fn session_mut(&mut self, session: Session) -> Option<&mut SessionState> {
        self.sessions.get_mut(&session)
    }

    /// Closes the slot (completed or cancelled); returns the session it held.
    pub fn close_session(&mut self, session: Session) -> Option<SessionState> {
        let s = self.sessions.remove(&session)?;
        self.closed.insert(session);
        Some(s)
    }

    /// The spec leaves the session's state open from here on (see the module docs).
    pub fn mark_uncertain(&mut self, session: Session) {
        self.uncertain.insert(session);
    }

    // ---- queries ----

    /// Anything was ever stored in `repo`.
    pub fn repo_exists(&self, repo: Repo) -> bool {
        self.repos.contains_key(&repo)
    }

    /// Repositories that exist, in order.
    pub fn repos(&self) -> Vec<Repo> {
        self.repos.keys().copied().collect()
    }

    fn blob_key(&self, blob: BlobId) -> Option<&str> {
        self.blob_digests.get(blob.0 as usize).map(String::as_str)
    }

    /// `repo` holds a blob with `blob`'s digest.
    pub fn has_blob(&self, repo: Repo, blob: BlobId) -> bool {
        match (self.repos.get(&repo), self.blob_key(blob)) {
            (Some(r), Some(d)) => r.blobs.contains(d),
            _ => false,
        }
    }

    /// `repo` holds a blob with this digest.
    pub fn has_blob_digest(&self, repo: Repo, digest: &str) -> bool {
        self.repos
            .get(&repo)
            .is_some_and(|r| r.blobs.contains(digest))
    }

    /// Some repository holds `blob`.
    pub fn has_blob_anywhere(&self, blob: BlobId) -> bool {
        match self.blob_key(blob) {
            Some(d) => self.repos.values().any(|r| r.blobs.contains(d)),
            None => false,
        }
    }

    /// `repo` holds `manifest` (under its own digest or the sha256 of its bytes).
    pub fn has_manifest(&self, repo: Repo, manifest: ManifestId) -> bool {
        self.stored_manifest_digest(repo, manifest).is_some()
    }

    /// The digest `manifest` is stored under in `repo`, if it is there.
    pub fn stored_manifest_digest(&self, repo: Repo, manifest: ManifestId) -> Option<&str> {
        let r = self.repos.get(&repo)?;
        let (d, s) = self.manifest_digests.get(manifest.0 as usize)?;
        r.manifests
            .get_key_value(d)
            .or_else(|| r.manifests.get_key_value(s))
            .map(|(k, _)| k.as_str())
    }

    /// The manifest stored under this digest in `repo`.
    pub fn manifest_by_digest(&self, repo: Repo, digest: &str) -> Option<ManifestId> {
        self.repos.get(&repo)?.manifests.get(digest).copied()
    }

    fn reference_key(&self, reference: &Reference) -> Option<String> {
        Some(match reference {
            Reference::Tag(t) => t.clone(),
            Reference::Digest(m) => self.manifest_digests.get(m.0 as usize)?.0.clone(),
            Reference::Raw(s) => s.clone(),
        })
    }

    /// What `GET /v2/<repo>/manifests/<reference>` returns.
    pub fn resolve(&self, repo: Repo, reference: &Reference) -> Option<ManifestId> {
        let d = self.resolve_digest(repo, reference)?;
        self.repos.get(&repo)?.manifests.get(&d).copied()
    }

    /// The digest a reference resolves to in `repo` (the digest the manifest is stored under).
    pub fn resolve_digest(&self, repo: Repo, reference: &Reference) -> Option<String> {
        let r = self.repos.get(&repo)?;
        let s = self.reference_key(reference)?;
        if s.contains(':') {
            r.manifests.contains_key(&s).then_some(s)
        } else {
            r.tags
                .get(&s)
                .filter(|d| r.manifests.contains_key(*d))
                .cloned()
        }
    }

    /// Tags of `repo`, ASCIIbetical.
    pub fn tags(&self, repo: Repo) -> Vec<String> {
        self.repos
            .get(&repo)
            .map(|r| r.tags.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Tags whose manifest was deleted, which a registry may still list (ASCIIbetical).
    pub fn dangling_tags(&self, repo: Repo) -> Vec<String> {
        self.repos
            .get(&repo)
            .map(|r| r.dangling.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether `tag` is dangling and the manifest it pointed to is stored again: a registry
    /// that kept the tag serves the manifest by it again, one that deleted it answers 404.
    pub fn dangling_revived(&self, repo: Repo, tag: &str) -> bool {
        self.repos.get(&repo).is_some_and(|r| {
            r.dangling
                .get(tag)
                .is_some_and(|d| r.manifests.contains_key(d))
        })
    }

    /// The manifest a tag points to.
    pub fn tag_target(&self, repo: Repo, tag: &str) -> Option<ManifestId> {
        let r = self.repos.get(&repo)?;
        r.tags.get(tag).and_then(|d| r.manifests.get(d)).copied()
    }

    /// Manifests stored in `repo`: (digest stored under, symbol), by digest.
    pub fn manifests(&self, repo: Repo) -> Vec<(String, ManifestId)> {
        self.repos
            .get(&repo)
            .map(|r| r.manifests.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }

    /// Blobs linked in `repo` (symbols whose digest is linked), in id order.
    pub fn blobs(&self, repo: Repo) -> Vec<BlobId> {
        (0..self.blob_digests.len())
            .map(|i| BlobId(i as u16))
            .filter(|b| self.has_blob(repo, *b))
            .collect()
    }

    /// The referrers list for `subject` in `repo`, sorted by digest.
    pub fn referrers(
        &self,
        repo: Repo,
        subject: ManifestId,
        artifact_type: Option<&str>,
        content: &Content,
    ) -> Vec<ReferrerFacts> {
        match content.manifest_digest(subject) {
            Some(d) => self.referrers_by_digest(repo, d, artifact_type, content),
            None => Vec::new(),
        }
    }

    /// The referrers list for a subject digest in `repo`, sorted by digest.
    pub fn referrers_by_digest(
        &self,
        repo: Repo,
        subject_digest: &str,
        artifact_type: Option<&str>,
        content: &Content,
    ) -> Vec<ReferrerFacts> {
        let Some(r) = self.repos.get(&repo) else {
            return Vec::new();
        };
        let mut out: Vec<ReferrerFacts> = r
            .manifests
            .iter()
            .filter(|(_, m)| {
                content
                    .manifest_subject(**m)
                    .and_then(|s| content.manifest_digest(s))
                    == Some(subject_digest)
            })
            .filter_map(|(stored, m)| {
                let mut f = content.referrer_descriptor(*m)?;
                f.digest = stored.clone();
                Some(f)
            })
            .filter(|f| match artifact_type {
                Some(at) => f.artifact_type.as_deref() == Some(at),
                None => true,
            })
            .collect();
        out.sort();
        out
    }

    /// The open session in this slot (`None` once completed or cancelled, or never opened).
    pub fn session(&self, session: Session) -> Option<&SessionState> {
        self.sessions.get(&session)
    }

    /// Open sessions.
    pub fn open_sessions(&self) -> Vec<(Session, SessionState)> {
        self.sessions.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// Open sessions whose state the model knows (not uncertain).
    pub fn certain_sessions(&self) -> Vec<(Session, SessionState)> {
        self.sessions
            .iter()
            .filter(|(k, _)| !self.uncertain.contains(k))
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// The session in this slot was completed or cancelled (and not reopened).
    pub fn session_closed(&self, session: Session) -> bool {
        self.closed.contains(&session)
    }

    /// The spec leaves this session's state open (see the module docs).
    pub fn session_uncertain(&self, session: Session) -> bool {
        self.uncertain.contains(&session)
    }

    /// `Ok` when every blob (image manifest) or child manifest (index) of `manifest` is in `repo`;
    /// otherwise the missing digests. The subject may be missing.
    pub fn manifest_pushable(
        &self,
        repo: Repo,
        manifest: ManifestId,
        content: &Content,
    ) -> Result<(), Vec<String>> {
        let mut missing = Vec::new();
        for b in content.manifest_blobs(manifest) {
            if let Some(d) = content.blob_digest(*b) {
                if !self.has_blob_digest(repo, d) && !missing.iter().any(|m| m == d) {
                    missing.push(d.to_string());
                }
            }
        }
        let r = self.repos.get(&repo);
        for c in content.manifest_children(manifest) {
            if let Some(d) = content.manifest_digest(*c) {
                if !r.is_some_and(|r| r.manifests.contains_key(d))
                    && !missing.iter().any(|m| m == d)
                {
                    missing.push(d.to_string());
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing)
        }
    }
}
