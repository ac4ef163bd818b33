//! end-11: mounting a blob from another repository (or from anywhere, without `from`).

use super::expect::{Exp, ExpectCx, Found};
use super::gen::Transition;
use super::{Footprint, Ids, Op, Operation, Renumber, Sym};
use crate::model::ModelState;
use crate::vocab::content::Content;
use crate::vocab::exchange::Exchange;
use crate::vocab::plan::{Method, Plan, Step, Url, Val};
use crate::vocab::{BlobId, DigestAlgo, Repo};
use serde::{Deserialize, Serialize};

/// Mounts `blob` into `repo` from `from` (or without `from` when `None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountBlob {
    pub repo: Repo,
    pub blob: BlobId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Repo>,
}

pub const TRANSITIONS: &[Transition] = &[Transition {
    name: "mount_blob",
    invalid: false,
    offer: |d| {
        let Some((from, blob)) = d.pick(&d.linked_blobs()) else {
            return Vec::new();
        };
        let others: Vec<Repo> = d.all_repos().into_iter().filter(|r| *r != from).collect();
        let repo = d.pick(&others).unwrap_or(from);
        let from = if d.chance(1, 5) { None } else { Some(from) };
        vec![Op::MountBlob(MountBlob { repo, blob, from })]
    },
}];

impl MountBlob {
    /// Whether the model links the blob.
    pub fn succeeds(&self, st: &ModelState) -> bool {
        match self.from {
            Some(f) => st.has_blob(f, self.blob),
            None => st.has_blob_anywhere(self.blob),
        }
    }
}

impl Operation for MountBlob {
    fn kind(&self, st: &ModelState, content: &Content) -> Option<&'static str> {
        content.blob(self.blob)?;
        Some(if self.succeeds(st) {
            "mount_blob"
        } else {
            "mount_missing"
        })
    }

    fn apply(&self, st: &mut ModelState, content: &Content) {
        if self.succeeds(st) {
            if let Some(d) = content.blob_digest(self.blob) {
                st.link_blob(self.repo, d);
            }
        }
    }

    fn plan(&self, content: &Content) -> Plan {
        let d = content.blob_digest(self.blob).unwrap_or("sha256:unknown");
        let mut step = Step::new(
            "post",
            "end-11",
            Method::Post,
            Url::repo(self.repo, "blobs/uploads/"),
        )
        .query("mount", d);
        if let Some(f) = self.from {
            step = step.query("from", Val::Repo(f));
        }
        Plan::one(step)
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, ex: &Exchange) -> Option<Exp> {
        if ex.request.method != "POST" {
            return None;
        }
        let st = cx.st;
        let e = if self.succeeds(st) && self.from.is_some() {
            Exp::new(&[201], "end-11/mount-201").alt(&[202], "end-11/mount-202")
        } else if self.succeeds(st) {
            Exp::new(&[201, 202], "end-11/mount-201")
        } else if st.has_blob_anywhere(self.blob) {
            Exp::new(&[202], "end-11/mount-201")
                .alt(&[201], "end-11/cross-mount")
                .alt(&[404], "end-11/mount-404")
        } else {
            Exp::new(&[202], "end-11/phantom-mount").alt(&[404], "end-11/mount-404")
        };
        let sha512 = cx.content.blob_algo(self.blob) == Some(DigestAlgo::Sha512);
        Some(
            e.location(201, "end-11/location")
                .location(202, "end-4a/location")
                .sha512_declinable(sha512),
        )
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, st: &ModelState, _: &Content) -> Footprint {
        let read = match self.from {
            Some(f) => Sym::Blob(f, self.blob),
            None => Sym::BlobAny(self.blob),
        };
        Footprint::default()
            .read(read)
            .write(Sym::Blob(self.repo, self.blob))
            .creates(st, self.repo)
    }

    fn ids(&self) -> Ids {
        Ids::blob(self.blob)
    }

    fn renumber(&mut self, r: &Renumber) {
        self.blob = r.blob(self.blob);
    }
}
