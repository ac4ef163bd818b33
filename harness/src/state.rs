//! ModelState: what exists where (blobs, manifests, tags per repo; open upload sessions), updated op by op as a spec-exact registry would.
//!
//! Modelling choices (the oracle compares registries against these):
//! - Storage is content-addressed: blobs and manifests are keyed by digest string, so two
//!   symbols with identical bytes (e.g. two empty blobs) are the same object.
//! - A manifest pushed by digest is stored under that digest; pushed by tag, under the sha256 of
//!   its bytes (a registry cannot know any other algorithm was meant).
//! - Every valid op succeeds; invalid ops change nothing. A manifest push is valid when its
//!   blobs and index children are present in the repository (the subject may be missing), the
//!   reference is a valid tag or the manifest's own digest, and the `Content-Type` is missing
//!   (our manifests carry `mediaType`) or matches it (parameters ignored).
//! - A failed `CompleteUpload` (wrong digest, incomplete bytes) leaves the session open (the spec
//!   is silent; the generator does not rely on it).
//! - A streamed `PatchChunk` appends `end - start` bytes at the current offset.
//! - Mount: linked when `from` holds the blob, or, with `from: None`, when any repository holds it.
//!   A failed mount opens an anonymous session that no op uses: ignored.
//! - A repository "exists" once anything (blob, mount, manifest) was stored in it, and keeps
//!   existing after deletes.

use crate::content::Content;
use crate::model::{
    BlobId, ContentTypeChoice, DigestAlgo, DigestChoice, ManifestId, Op, Reference, Repo, Session,
};
use crate::observe::ReferrerFacts;
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
}

/// What a spec-exact registry holds after each op.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelState {
    repos: BTreeMap<Repo, RepoState>,
    sessions: BTreeMap<Session, SessionState>,
    closed: BTreeSet<Session>,
    /// Digest of each blob symbol (filled from the content at `apply`).
    blob_digests: Vec<String>,
    /// (own digest, sha256) of each manifest symbol.
    manifest_digests: Vec<(String, String)>,
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
pub fn is_valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A digest of a known algorithm with a well-formed lowercase hex encoding.
pub fn is_valid_digest(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else {
        return false;
    };
    let len = match algo {
        "sha256" => 64,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// How a `Reference` names a manifest, once rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefKind {
    Tag(String),
    Digest(String),
    Invalid(String),
}

/// Renders a reference to the string used in URLs (`None` for an unknown manifest symbol).
pub fn reference_string(reference: &Reference, content: &Content) -> Option<String> {
    match reference {
        Reference::Tag(t) => Some(t.clone()),
        Reference::Digest(m) => content.manifest_digest(*m).map(str::to_string),
        Reference::Raw(s) => Some(s.clone()),
    }
}

/// Classifies a reference as a valid tag, a valid digest, or neither.
pub fn classify_reference(reference: &Reference, content: &Content) -> RefKind {
    match reference_string(reference, content) {
        None => RefKind::Invalid(String::new()),
        Some(s) if s.contains(':') => {
            if is_valid_digest(&s) {
                RefKind::Digest(s)
            } else {
                RefKind::Invalid(s)
            }
        }
        Some(s) if is_valid_tag(&s) => RefKind::Tag(s),
        Some(s) => RefKind::Invalid(s),
    }
}

impl ModelState {
    pub fn new() -> ModelState {
        ModelState::default()
    }

    /// Caches the content's digests (the queries that take no `Content` need them).
    fn learn(&mut self, content: &Content) {
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

    /// Applies one op as a spec-exact registry would.
    pub fn apply(&mut self, op: &Op, content: &Content) {
        self.learn(content);
        match op {
            Op::PushBlob {
                repo, blob, digest, ..
            } => {
                if *digest == DigestChoice::Correct {
                    if let Some(d) = content.blob_digest(*blob) {
                        let d = d.to_string();
                        self.repo_mut(*repo).blobs.insert(d);
                    }
                }
            }
            Op::StartUpload {
                repo,
                session,
                blob,
                digest_algorithm,
            } => {
                self.sessions.insert(
                    *session,
                    SessionState {
                        repo: *repo,
                        blob: *blob,
                        offset: 0,
                        algo: *digest_algorithm,
                    },
                );
                self.closed.remove(session);
            }
            Op::PatchChunk {
                session,
                start,
                end,
                streamed,
            } => {
                let size = self.session_blob_size(*session, content);
                if let (Some(s), Some(size)) = (self.sessions.get_mut(session), size) {
                    if *streamed {
                        let len = end.saturating_sub(*start);
                        if len > 0 && s.offset.saturating_add(len) <= size {
                            s.offset += len;
                        }
                    } else if *start == s.offset && *end > *start && *end <= size {
                        s.offset = *end;
                    }
                }
            }
            Op::CompleteUpload {
                session,
                rest_in_body,
                digest,
            } => {
                if self.completes(*session, *rest_in_body, *digest, content) {
                    if let Some(s) = self.sessions.remove(session) {
                        self.closed.insert(*session);
                        if let Some(d) = content.blob_digest(s.blob) {
                            let d = d.to_string();
                            self.repo_mut(s.repo).blobs.insert(d);
                        }
                    }
                }
            }
            Op::CancelUpload { session } => {
                if self.sessions.remove(session).is_some() {
                    self.closed.insert(*session);
                }
            }
            Op::MountBlob { repo, blob, from } => {
                if self.mount_succeeds(*repo, *blob, *from) {
                    if let Some(d) = content.blob_digest(*blob) {
                        let d = d.to_string();
                        self.repo_mut(*repo).blobs.insert(d);
                    }
                }
            }
            Op::PushManifest {
                repo,
                manifest,
                reference,
                tags,
                content_type,
            } => {
                if !self.manifest_push_valid(
                    *repo,
                    *manifest,
                    reference,
                    tags,
                    content_type,
                    content,
                ) {
                    return;
                }
                let (key, tag) = match classify_reference(reference, content) {
                    RefKind::Digest(d) => (d, None),
                    RefKind::Tag(t) => match content.manifest_sha256(*manifest) {
                        Some(d) => (d.to_string(), Some(t)),
                        None => return,
                    },
                    RefKind::Invalid(_) => return,
                };
                let by_digest = tag.is_none();
                let r = self.repo_mut(*repo);
                r.manifests.insert(key.clone(), *manifest);
                if let Some(t) = tag {
                    r.tags.insert(t, key.clone());
                }
                if by_digest {
                    for t in tags {
                        r.tags.insert(t.clone(), key.clone());
                    }
                }
            }
            Op::DeleteManifest { repo, reference } => {
                let kind = classify_reference(reference, content);
                let Some(r) = self.repos.get_mut(repo) else {
                    return;
                };
                match kind {
                    RefKind::Digest(d) => {
                        if r.manifests.remove(&d).is_some() {
                            r.tags.retain(|_, v| *v != d);
                        }
                    }
                    RefKind::Tag(t) => {
                        r.tags.remove(&t);
                    }
                    RefKind::Invalid(_) => {}
                }
            }
            Op::DeleteBlob { repo, blob } => {
                if let (Some(r), Some(d)) = (self.repos.get_mut(repo), content.blob_digest(*blob)) {
                    r.blobs.remove(d);
                }
            }
            Op::CheckApi
            | Op::UploadStatus { .. }
            | Op::HeadBlob { .. }
            | Op::GetBlob { .. }
            | Op::HeadManifest { .. }
            | Op::GetManifest { .. }
            | Op::PushBadManifest { .. }
            | Op::ListTags { .. }
            | Op::ListTagsPaged { .. }
            | Op::ListReferrers { .. }
            | Op::Catalog { .. }
            | Op::BadName { .. }
            | Op::GetBlobRaw { .. } => {}
        }
    }

    fn session_blob_size(&self, session: Session, content: &Content) -> Option<u32> {
        let s = self.sessions.get(&session)?;
        content.blob(s.blob).map(|b| b.len() as u32)
    }

    /// Whether `CompleteUpload` with these parameters would store the blob.
    pub fn completes(
        &self,
        session: Session,
        rest_in_body: bool,
        digest: DigestChoice,
        content: &Content,
    ) -> bool {
        let Some(size) = self.session_blob_size(session, content) else {
            return false;
        };
        let Some(s) = self.sessions.get(&session) else {
            return false;
        };
        if digest != DigestChoice::Correct {
            return false;
        }
        // The session's digest-algorithm must agree with the blob's digest.
        if let (Some(a), Some(b)) = (s.algo, content.blob_algo(s.blob)) {
            if a != b {
                return false;
            }
        }
        rest_in_body || s.offset == size
    }

    /// Whether `MountBlob` links the blob.
    pub fn mount_succeeds(&self, repo: Repo, blob: BlobId, from: Option<Repo>) -> bool {
        let _ = repo;
        match from {
            Some(f) => self.has_blob(f, blob),
            None => self.has_blob_anywhere(blob),
        }
    }

    /// Whether a `PushManifest` is valid (and so stores the manifest).
    pub fn manifest_push_valid(
        &self,
        repo: Repo,
        manifest: ManifestId,
        reference: &Reference,
        tags: &[String],
        content_type: &ContentTypeChoice,
        content: &Content,
    ) -> bool {
        let Some(media_type) = content.manifest_media_type(manifest) else {
            return false;
        };
        // Our manifests always carry `mediaType`: without a Content-Type the registry takes it
        // from there; a different Content-Type contradicts it (MANIFEST_INVALID).
        if let ContentTypeChoice::Other(ct) = content_type {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if essence != media_type {
                return false;
            }
        }
        let ref_ok = match classify_reference(reference, content) {
            RefKind::Tag(_) => true,
            RefKind::Digest(d) => {
                content.manifest_digest(manifest) == Some(d.as_str())
                    || content.manifest_sha256(manifest) == Some(d.as_str())
            }
            RefKind::Invalid(_) => false,
        };
        ref_ok
            && tags.iter().all(|t| is_valid_tag(t))
            && self.manifest_pushable(repo, manifest, content).is_ok()
    }

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
        let (Some(r), Some((d, s))) = (
            self.repos.get(&repo),
            self.manifest_digests.get(manifest.0 as usize),
        ) else {
            return false;
        };
        r.manifests.contains_key(d) || r.manifests.contains_key(s)
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

    /// What `GET /v2/<repo>/manifests/<reference>` returns.
    pub fn resolve(&self, repo: Repo, reference: &Reference) -> Option<ManifestId> {
        let r = self.repos.get(&repo)?;
        let s = match reference {
            Reference::Tag(t) => t.clone(),
            Reference::Digest(m) => self.manifest_digests.get(m.0 as usize)?.0.clone(),
            Reference::Raw(s) => s.clone(),
        };
        if s.contains(':') {
            r.manifests.get(&s).copied()
        } else {
            r.tags.get(&s).and_then(|d| r.manifests.get(d)).copied()
        }
    }

    /// The digest a reference resolves to in `repo` (the digest the manifest is stored under).
    pub fn resolve_digest(&self, repo: Repo, reference: &Reference) -> Option<String> {
        let r = self.repos.get(&repo)?;
        let s = match reference {
            Reference::Tag(t) => t.clone(),
            Reference::Digest(m) => self.manifest_digests.get(m.0 as usize)?.0.clone(),
            Reference::Raw(s) => s.clone(),
        };
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

    /// The session in this slot was completed or cancelled (and not reopened).
    pub fn session_closed(&self, session: Session) -> bool {
        self.closed.contains(&session)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BlobSpec, ContentSpec, Flavor, ManifestSpec, PushMethod};

    fn content() -> Content {
        let blob = |size, seed| BlobSpec {
            size,
            seed,
            algo: DigestAlgo::Sha256,
        };
        let image = |config: u16, layers: Vec<u16>, subject: Option<u16>, at: Option<&str>| {
            ManifestSpec::Image {
                flavor: Flavor::Oci,
                config: BlobId(config),
                config_media_type: None,
                layers: layers.into_iter().map(BlobId).collect(),
                subject: subject.map(ManifestId),
                artifact_type: at.map(str::to_string),
                annotations: BTreeMap::new(),
                data_field: false,
                custom_fields: false,
                algo: DigestAlgo::Sha256,
            }
        };
        Content::render(&ContentSpec {
            // Blobs 2 and 3 are both empty: the same object.
            blobs: vec![blob(10, 1), blob(20, 2), blob(0, 3), blob(0, 4)],
            manifests: vec![
                image(0, vec![1], None, None),
                image(0, vec![2], Some(0), Some("application/vnd.example.sbom.v1")),
                image(0, vec![], Some(0), None),
                ManifestSpec::Index {
                    flavor: Flavor::Oci,
                    manifests: vec![ManifestId(0)],
                    subject: None,
                    artifact_type: None,
                    annotations: BTreeMap::new(),
                    algo: DigestAlgo::Sha256,
                },
            ],
        })
        .unwrap()
    }

    fn push(repo: u8, blob: u16) -> Op {
        Op::PushBlob {
            repo: Repo(repo),
            blob: BlobId(blob),
            method: PushMethod::Monolithic,
            digest: DigestChoice::Correct,
        }
    }

    fn push_manifest(repo: u8, m: u16, reference: Reference, tags: &[&str]) -> Op {
        Op::PushManifest {
            repo: Repo(repo),
            manifest: ManifestId(m),
            reference,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            content_type: ContentTypeChoice::Matching,
        }
    }

    #[test]
    fn grammars() {
        assert!(is_valid_tag("latest") && is_valid_tag("_x") && is_valid_tag(&"a".repeat(128)));
        assert!(
            !is_valid_tag("-x")
                && !is_valid_tag(&"a".repeat(129))
                && !is_valid_tag("a:b")
                && !is_valid_tag("")
        );
        assert!(is_valid_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!is_valid_digest("sha256:xyz") && !is_valid_digest("md5:abc"));
        assert!(!is_valid_digest(&format!("sha256:{}", "A".repeat(64))));
    }

    #[test]
    fn blobs_push_mount_delete() {
        let c = content();
        let mut s = ModelState::new();
        assert!(!s.repo_exists(Repo(0)));
        s.apply(
            &Op::PushBlob {
                repo: Repo(0),
                blob: BlobId(0),
                method: PushMethod::Monolithic,
                digest: DigestChoice::Wrong,
            },
            &c,
        );
        assert!(!s.repo_exists(Repo(0)) && !s.has_blob(Repo(0), BlobId(0)));
        s.apply(&push(0, 0), &c);
        s.apply(&push(0, 2), &c);
        assert!(
            s.has_blob(Repo(0), BlobId(0)) && s.has_blob(Repo(0), BlobId(3)),
            "content-addressed"
        );
        assert!(!s.has_blob(Repo(1), BlobId(0)) && s.has_blob_anywhere(BlobId(0)));
        s.apply(
            &Op::MountBlob {
                repo: Repo(1),
                blob: BlobId(1),
                from: Some(Repo(0)),
            },
            &c,
        );
        assert!(!s.has_blob(Repo(1), BlobId(1)) && !s.repo_exists(Repo(1)));
        s.apply(
            &Op::MountBlob {
                repo: Repo(1),
                blob: BlobId(0),
                from: None,
            },
            &c,
        );
        assert!(s.has_blob(Repo(1), BlobId(0)));
        s.apply(
            &Op::DeleteBlob {
                repo: Repo(0),
                blob: BlobId(0),
            },
            &c,
        );
        assert!(
            !s.has_blob(Repo(0), BlobId(0))
                && s.has_blob(Repo(1), BlobId(0))
                && s.repo_exists(Repo(0))
        );
        assert_eq!(s.repos(), vec![Repo(0), Repo(1)]);
    }

    #[test]
    fn sessions() {
        let c = content();
        let mut s = ModelState::new();
        let sess = Session(0);
        s.apply(
            &Op::StartUpload {
                repo: Repo(2),
                session: sess,
                blob: BlobId(1),
                digest_algorithm: None,
            },
            &c,
        );
        assert_eq!(s.session(sess).unwrap().offset, 0);
        let patch = |start, end| Op::PatchChunk {
            session: sess,
            start,
            end,
            streamed: false,
        };
        s.apply(&patch(0, 5), &c);
        s.apply(&patch(3, 8), &c); // out of order: 416, no change
        assert_eq!(s.session(sess).unwrap().offset, 5);
        s.apply(&patch(5, 8), &c);
        assert_eq!(s.session(sess).unwrap().offset, 8);
        assert!(!s.completes(sess, false, DigestChoice::Correct, &c));
        s.apply(
            &Op::CompleteUpload {
                session: sess,
                rest_in_body: true,
                digest: DigestChoice::Wrong,
            },
            &c,
        );
        assert!(s.session(sess).is_some() && !s.has_blob(Repo(2), BlobId(1)));
        s.apply(
            &Op::CompleteUpload {
                session: sess,
                rest_in_body: true,
                digest: DigestChoice::Correct,
            },
            &c,
        );
        assert!(
            s.session(sess).is_none() && s.session_closed(sess) && s.has_blob(Repo(2), BlobId(1))
        );
        s.apply(
            &Op::StartUpload {
                repo: Repo(2),
                session: sess,
                blob: BlobId(0),
                digest_algorithm: Some(DigestAlgo::Sha256),
            },
            &c,
        );
        assert!(!s.session_closed(sess));
        s.apply(&Op::CancelUpload { session: sess }, &c);
        assert!(s.session(sess).is_none() && s.session_closed(sess));
    }

    #[test]
    fn manifests_tags_referrers() {
        let c = content();
        let mut s = ModelState::new();
        let r = Repo(0);
        assert_eq!(
            s.manifest_pushable(r, ManifestId(0), &c).unwrap_err().len(),
            2
        );
        s.apply(&push_manifest(0, 0, Reference::Tag("v1".into()), &[]), &c);
        assert!(!s.has_manifest(r, ManifestId(0)));
        s.apply(&push(0, 0), &c);
        s.apply(&push(0, 1), &c);
        assert!(s.manifest_pushable(r, ManifestId(0), &c).is_ok());
        // Wrong content type or invalid tag: rejected.
        let mut bad = push_manifest(0, 0, Reference::Tag("v1".into()), &[]);
        if let Op::PushManifest { content_type, .. } = &mut bad {
            *content_type = ContentTypeChoice::Other("application/json".into());
        }
        s.apply(&bad, &c);
        s.apply(&push_manifest(0, 0, Reference::Raw("-x".into()), &[]), &c);
        s.apply(
            &push_manifest(0, 0, Reference::Digest(ManifestId(1)), &[]),
            &c,
        );
        assert!(!s.has_manifest(r, ManifestId(0)));

        s.apply(&push_manifest(0, 0, Reference::Tag("v1".into()), &[]), &c);
        s.apply(
            &push_manifest(0, 0, Reference::Digest(ManifestId(0)), &["latest", "V1"]),
            &c,
        );
        assert_eq!(s.tags(r), vec!["V1", "latest", "v1"]);
        assert_eq!(
            s.resolve(r, &Reference::Tag("latest".into())),
            Some(ManifestId(0))
        );
        assert_eq!(
            s.resolve(r, &Reference::Digest(ManifestId(0))),
            Some(ManifestId(0))
        );
        let d0 = c.manifest_digest(ManifestId(0)).unwrap().to_string();
        assert_eq!(
            s.resolve(r, &Reference::Raw(d0.clone())),
            Some(ManifestId(0))
        );

        // The index needs its child in the same repo.
        assert!(s.manifest_pushable(Repo(1), ManifestId(3), &c).is_err());
        assert!(s.manifest_pushable(r, ManifestId(3), &c).is_ok());
        s.apply(&push_manifest(0, 3, Reference::Tag("v1".into()), &[]), &c);
        assert_eq!(s.tag_target(r, "v1"), Some(ManifestId(3)), "tag moved");

        // Referrers: subject may be missing; listed by digest with artifactType.
        s.apply(&push(1, 0), &c);
        s.apply(&push(1, 2), &c);
        s.apply(
            &push_manifest(1, 1, Reference::Digest(ManifestId(1)), &[]),
            &c,
        );
        s.apply(&push_manifest(1, 2, Reference::Tag("sig".into()), &[]), &c);
        let refs = s.referrers(Repo(1), ManifestId(0), None, &c);
        assert_eq!(refs.len(), 2);
        assert!(refs[0].digest < refs[1].digest);
        let filtered = s.referrers(
            Repo(1),
            ManifestId(0),
            Some("application/vnd.example.sbom.v1"),
            &c,
        );
        assert_eq!(filtered.len(), 1);
        assert_eq!(
            filtered[0].digest,
            c.manifest_digest(ManifestId(1)).unwrap()
        );
        let cfg_typed = s.referrers(Repo(1), ManifestId(0), Some(crate::content::OCI_CONFIG), &c);
        assert_eq!(cfg_typed.len(), 1);
        assert!(s.referrers(r, ManifestId(0), None, &c).is_empty());

        // Delete by tag removes the tag only; by digest removes the manifest and its tags.
        s.apply(
            &Op::DeleteManifest {
                repo: r,
                reference: Reference::Tag("V1".into()),
            },
            &c,
        );
        assert!(s.has_manifest(r, ManifestId(0)) && s.tags(r) == vec!["latest", "v1"]);
        s.apply(
            &Op::DeleteManifest {
                repo: r,
                reference: Reference::Digest(ManifestId(0)),
            },
            &c,
        );
        assert!(!s.has_manifest(r, ManifestId(0)));
        assert_eq!(s.tags(r), vec!["v1"]);
        assert_eq!(s.tag_target(r, "v1"), Some(ManifestId(3)));
        s.apply(
            &Op::DeleteManifest {
                repo: Repo(1),
                reference: Reference::Tag("sig".into()),
            },
            &c,
        );
        assert_eq!(
            s.referrers(Repo(1), ManifestId(0), None, &c).len(),
            2,
            "untagged referrer stays"
        );
    }
}
