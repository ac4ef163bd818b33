//! What a family's transitions draw from: the model state, the content and random numbers
//! (`Draw`), and the transition type itself. The state machine that picks transitions by
//! weight lives in `generate`.

use super::Op;
use crate::model::{ModelState, SessionState};
use crate::vocab::content::Content;
use crate::vocab::{BlobId, ManifestId, Reference, Repo, Session};
use rand::RngCore;

/// A typed transition of the reference state machine: drawn only when `offer` returns ops.
pub struct Transition {
    /// Names the transition in the generator's weight table.
    pub name: &'static str,
    /// A deliberately invalid request (drawn with the invalid share).
    pub invalid: bool,
    /// The op(s) this transition adds in the current state: empty when not offered. A few
    /// transitions add a short chain (a manifest with its missing dependencies), each op valid
    /// in the state the previous one leaves.
    pub offer: fn(&mut Draw<'_>) -> Vec<Op>,
}

/// Tags that exercise ASCIIbetical ordering.
pub const TAG_POOL: [&str; 12] = [
    "latest", "v1", "V1", "v1.0", "v10", "v2", "a_b", "Z9", "0", "1.2.3", "_x", "v1-rc.1",
];

/// Artifact types used by referrers.
pub const ARTIFACT_TYPES: [&str; 3] = [
    "application/vnd.example.sbom.v1",
    "application/vnd.example.signature.v1",
    "application/vnd.ocidiff.test+json",
];

/// Upload session slots a case uses.
pub const SESSIONS: u8 = 3;

/// The generator's view while it draws one transition.
pub struct Draw<'a> {
    pub st: &'a ModelState,
    pub content: &'a Content,
    /// Repositories `r0 .. r{repos-1}`.
    pub repos: u8,
    /// Ops still allowed in the case (chains stop there).
    pub budget: usize,
    pub rng: &'a mut dyn RngCore,
}

impl Draw<'_> {
    pub fn u32(&mut self) -> u32 {
        self.rng.next_u32()
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            0
        } else {
            self.rng.next_u32() % n
        }
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u32, den: u32) -> bool {
        self.below(den) < num
    }

    pub fn pick<T: Clone>(&mut self, v: &[T]) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            let i = self.below(v.len() as u32) as usize;
            Some(v[i].clone())
        }
    }

    pub fn repo(&mut self) -> Repo {
        Repo(self.below(self.repos.max(1) as u32) as u8)
    }

    pub fn all_repos(&self) -> Vec<Repo> {
        (0..self.repos.max(1)).map(Repo).collect()
    }

    pub fn blob(&mut self) -> BlobId {
        BlobId(self.below(self.content.blob_count().max(1) as u32) as u16)
    }

    pub fn manifest(&mut self) -> Option<ManifestId> {
        let n = self.content.manifest_count() as u32;
        (n > 0).then(|| ManifestId(self.below(n) as u16))
    }

    pub fn blob_size(&self, b: BlobId) -> u32 {
        self.content.blob(b).map(|b| b.len() as u32).unwrap_or(0)
    }

    pub fn tag(&mut self) -> String {
        TAG_POOL[self.below(TAG_POOL.len() as u32) as usize].to_string()
    }

    /// (repo, blob) pairs present.
    pub fn linked_blobs(&self) -> Vec<(Repo, BlobId)> {
        let mut out = Vec::new();
        for r in self.st.repos() {
            for b in self.st.blobs(r) {
                out.push((r, b));
            }
        }
        out
    }

    /// (repo, reference naming it as stored, manifest) for stored manifests.
    pub fn stored_manifests(&self) -> Vec<(Repo, Reference, ManifestId)> {
        let mut out = Vec::new();
        for r in self.st.repos() {
            for (d, m) in self.st.manifests(r) {
                let reference = if self.content.manifest_digest(m) == Some(d.as_str()) {
                    Reference::Digest(m)
                } else {
                    Reference::Raw(d)
                };
                out.push((r, reference, m));
            }
        }
        out
    }

    /// (repo, tag) pairs.
    pub fn tagged(&self) -> Vec<(Repo, String)> {
        let mut out = Vec::new();
        for r in self.st.repos() {
            for t in self.st.tags(r) {
                out.push((r, t));
            }
        }
        out
    }

    /// Open sessions whose state the model knows.
    pub fn usable_sessions(&self) -> Vec<(Session, SessionState)> {
        self.st.certain_sessions()
    }
}
