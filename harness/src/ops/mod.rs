//! Operations, the unit of everything ocidiff does. Each family lives in one file that holds
//! all there is to know about it:
//!
//! - the op's parameters (a struct, serialized as a scenario's `[[ops]]` table);
//! - its transitions: how the generator draws it from the model state (`TRANSITIONS`);
//! - `kind`: which transition it is in a given state (`None`: not offered there), the
//!   precondition that shrinking re-checks;
//! - `apply`: what it does to the model;
//! - `plan`: the requests it sends (one plan, run by the executor and rendered by `repro.sh`);
//! - `expect`: what the spec expects of each answer, and `check_op` over all of them;
//! - `footprint`: the model symbols it reads and writes (taint, cascades);
//! - `ids` / `renumber`: the content it names (shrinking, validation).
//!
//! [`Op`] is the one enum, and [`Op::op`] the one dispatch: every part is a required method of
//! [`Operation`], so a new operation does not compile until it has them all.

pub mod api;
pub mod blob_pull;
pub mod blob_push;
pub mod catalog;
pub mod delete;
pub mod expect;
pub mod gen;
pub mod manifest_pull;
pub mod manifest_push;
pub mod mount;
pub mod names;
pub mod referrers;
pub mod refs;
pub mod tags;
pub mod upload;

use crate::model::ModelState;
use crate::vocab::content::Content;
use crate::vocab::exchange::Exchange;
use crate::vocab::plan::Plan;
use crate::vocab::{BlobId, ContentSpec, ManifestId, Repo, Session};
use expect::{Exp, ExpectCx, Found};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A symbol whose state on a target may no longer match the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sym {
    Blob(Repo, BlobId),
    /// Read-only: any repository's copy of the blob.
    BlobAny(BlobId),
    Manifest(Repo, ManifestId),
    Tags(Repo),
    Referrers(Repo, ManifestId),
    Session(Session),
    RepoExists(Repo),
}

/// The symbols an op reads and writes, given the model state before it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    pub reads: Vec<Sym>,
    pub writes: Vec<Sym>,
}

impl Footprint {
    pub fn read(mut self, s: Sym) -> Footprint {
        self.reads.push(s);
        self
    }

    pub fn write(mut self, s: Sym) -> Footprint {
        self.writes.push(s);
        self
    }

    /// Writes `RepoExists(repo)` when the op creates the repository.
    pub fn creates(mut self, st: &ModelState, repo: Repo) -> Footprint {
        if !st.repo_exists(repo) {
            self.writes.push(Sym::RepoExists(repo));
        }
        self
    }

    /// Whether the op changes what a registry holds.
    pub fn mutating(&self) -> bool {
        !self.writes.is_empty()
    }
}

/// The content ids and sessions an op names directly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    pub blobs: Vec<BlobId>,
    pub manifests: Vec<ManifestId>,
    pub sessions: Vec<Session>,
}

impl Ids {
    pub fn blob(b: BlobId) -> Ids {
        Ids {
            blobs: vec![b],
            ..Ids::default()
        }
    }

    pub fn session(s: Session) -> Ids {
        Ids {
            sessions: vec![s],
            ..Ids::default()
        }
    }

    pub fn manifests(m: impl IntoIterator<Item = ManifestId>) -> Ids {
        Ids {
            manifests: m.into_iter().collect(),
            ..Ids::default()
        }
    }
}

/// How content ids are renumbered when unused content is dropped.
#[derive(Clone, Debug, Default)]
pub struct Renumber {
    pub blobs: BTreeMap<u16, u16>,
    pub manifests: BTreeMap<u16, u16>,
}

impl Renumber {
    pub fn blob(&self, b: BlobId) -> BlobId {
        BlobId(self.blobs.get(&b.0).copied().unwrap_or(b.0))
    }

    pub fn manifest(&self, m: ManifestId) -> ManifestId {
        ManifestId(self.manifests.get(&m.0).copied().unwrap_or(m.0))
    }
}

/// Everything an operation family provides (see the module docs).
pub trait Operation {
    /// The transition this op is in state `st` (`None`: not offered there). Shrinking keeps a
    /// candidate only when every op is still the same kind of transition.
    fn kind(&self, st: &ModelState, content: &Content) -> Option<&'static str>;
    /// What the op does to a spec-exact registry.
    fn apply(&self, st: &mut ModelState, content: &Content);
    /// The requests the op sends.
    fn plan(&self, content: &Content) -> Plan;
    /// What the spec expects of one exchange of the plan (`None`: no opinion).
    fn expect(&self, cx: &mut ExpectCx<'_>, ex: &Exchange) -> Option<Exp>;
    /// Checks over all of the op's exchanges on one target (e.g. pages concatenated).
    fn check_op(&self, cx: &ExpectCx<'_>, exs: &[Exchange]) -> Vec<Found>;
    /// The model symbols the op reads and writes in state `st`.
    fn footprint(&self, st: &ModelState, content: &Content) -> Footprint;
    /// The content ids and sessions the op names.
    fn ids(&self) -> Ids;
    /// Rewrites the content ids the op names.
    fn renumber(&mut self, r: &Renumber);
    /// Simpler variants of the op to try while shrinking, simplest first (default: none).
    fn simpler(&self) -> Vec<Op> {
        Vec::new()
    }
}

macro_rules! operations {
    ($($(#[$m:meta])* $variant:ident($ty:ty) = $name:literal,)*) => {
        /// One symbolic operation (see the module docs); serialized with `op = "<name>"`.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "op", rename_all = "snake_case")]
        pub enum Op {
            $($(#[$m])* $variant($ty),)*
        }

        impl Op {
            /// The one dispatch over operations.
            pub fn op(&self) -> &dyn Operation {
                match self {
                    $(Op::$variant(o) => o,)*
                }
            }

            /// The one dispatch over operations, for renumbering.
            pub fn op_mut(&mut self) -> &mut dyn Operation {
                match self {
                    $(Op::$variant(o) => o,)*
                }
            }

            /// The op's name in scenario files.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Op::$variant(_) => $name,)*
                }
            }

            /// Every op name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name,)*];
        }

        $(impl From<$ty> for Op {
            fn from(o: $ty) -> Op {
                Op::$variant(o)
            }
        })*
    };
}

operations! {
    /// end-1: `GET /v2/`.
    CheckApi(api::CheckApi) = "check_api",
    /// A whole blob upload by one of the methods (end-4a/4b/5/6).
    PushBlob(blob_push::PushBlob) = "push_blob",
    /// end-4a / end-4c: open an upload session.
    StartUpload(upload::StartUpload) = "start_upload",
    /// end-5: one chunk of an open session.
    PatchChunk(upload::PatchChunk) = "patch_chunk",
    /// end-6: close an upload session.
    CompleteUpload(upload::CompleteUpload) = "complete_upload",
    /// end-13: upload status.
    UploadStatus(upload::UploadStatus) = "upload_status",
    /// end-14: cancel an upload.
    CancelUpload(upload::CancelUpload) = "cancel_upload",
    /// end-11: cross-repository mount.
    MountBlob(mount::MountBlob) = "mount_blob",
    /// end-2 HEAD.
    HeadBlob(blob_pull::HeadBlob) = "head_blob",
    /// end-2 GET, optionally with `Range`.
    GetBlob(blob_pull::GetBlob) = "get_blob",
    /// end-3 HEAD.
    HeadManifest(manifest_pull::HeadManifest) = "head_manifest",
    /// end-3 GET.
    GetManifest(manifest_pull::GetManifest) = "get_manifest",
    /// end-7a / end-7b.
    PushManifest(manifest_push::PushManifest) = "push_manifest",
    /// end-7a with a malformed body.
    PushBadManifest(manifest_push::PushBadManifest) = "push_bad_manifest",
    /// end-8a / end-8b.
    ListTags(tags::ListTags) = "list_tags",
    /// end-8b, paging through the whole list.
    ListTagsPaged(tags::ListTagsPaged) = "list_tags_paged",
    /// end-12a / end-12b.
    ListReferrers(referrers::ListReferrers) = "list_referrers",
    /// `GET /v2/_catalog` (not in the spec).
    Catalog(catalog::Catalog) = "catalog",
    /// end-9.
    DeleteManifest(delete::DeleteManifest) = "delete_manifest",
    /// end-10.
    DeleteBlob(delete::DeleteBlob) = "delete_blob",
    /// A request with an invalid repository name.
    BadName(names::BadName) = "bad_name",
    /// end-2 with a malformed or unknown digest string.
    GetBlobRaw(blob_pull::GetBlobRaw) = "get_blob_raw",
}

/// A complete test case: content plus the operations that use it. This is exactly what a
/// scenario / reproducer file stores.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    #[serde(default)]
    pub content: ContentSpec,
    #[serde(default)]
    pub ops: Vec<Op>,
}

impl Sequence {
    /// A sequence written as TOML (`[content]` and `[[ops]]`, as in scenario files).
    pub fn from_toml(text: &str) -> Result<Sequence, toml::de::Error> {
        toml::from_str(text)
    }

    /// The kind of every op as the model walks the sequence (`None` where an op is not
    /// offered by the state it meets).
    pub fn kinds(&self, content: &Content) -> Vec<Option<&'static str>> {
        let mut st = ModelState::new();
        st.learn(content);
        self.ops
            .iter()
            .map(|op| {
                let k = op.op().kind(&st, content);
                op.op().apply(&mut st, content);
                k
            })
            .collect()
    }
}

/// A sequence using every operation and every content feature (`ops/examples/every_op.toml`).
pub fn every_op() -> Sequence {
    Sequence::from_toml(include_str!("examples/every_op.toml"))
        .unwrap_or_else(|e| panic!("ops/examples/every_op.toml: {e}"))
}

/// Walks `ops` through the model from an empty state and returns the final state.
pub fn model_after(ops: &[Op], content: &Content) -> ModelState {
    let mut st = ModelState::new();
    st.learn(content);
    for op in ops {
        op.op().apply(&mut st, content);
    }
    st
}

/// The families' transitions, for the generator.
pub fn transitions() -> Vec<&'static gen::Transition> {
    [
        api::TRANSITIONS,
        blob_push::TRANSITIONS,
        upload::TRANSITIONS,
        mount::TRANSITIONS,
        blob_pull::TRANSITIONS,
        manifest_pull::TRANSITIONS,
        manifest_push::TRANSITIONS,
        tags::TRANSITIONS,
        referrers::TRANSITIONS,
        catalog::TRANSITIONS,
        delete::TRANSITIONS,
        names::TRANSITIONS,
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests;
