//! end-11: mounting a blob from another repository (or from anywhere, without `from`), as a
//! client does it: a mount declined with 202 opens an upload session, and the blob is then
//! uploaded through it (end-6); a mount answered 201 is checked to have made the blob pullable.

use super::expect::{Check, Exp, ExpectCx, Found};
use super::gen::Transition;
use super::{Footprint, Ids, Op, Operation, Renumber, Sym};
use crate::model::ModelState;
use crate::vocab::content::Content;
use crate::vocab::exchange::Exchange;
use crate::vocab::plan::{Body, Method, Plan, Step, Url, Val, When};
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
        // Mounted, or uploaded through the session a declined mount opens.
        if let Some(d) = content.blob_digest(self.blob) {
            st.link_blob(self.repo, d);
        }
    }

    fn plan(&self, content: &Content) -> Plan {
        let d = content.blob_digest(self.blob).unwrap_or("sha256:unknown");
        let mut post = Step::new(
            "post",
            "end-11",
            Method::Post,
            Url::repo(self.repo, "blobs/uploads/"),
        )
        .query("mount", d);
        if let Some(f) = self.from {
            post = post.query("from", Val::Repo(f));
        }
        // The Location of a 201 is a pullable blob: the mount's (end-11) is HEADed, the
        // fallback PUT's (end-6) pulled (it may be a storage URL signed for GET), each right
        // after it and judged by its own rule.
        let verify = |label: &str, method: Method| {
            Step::new(label, "end-2", method, Url::Location).when(When::PrevStatus(201))
        };
        Plan::one(post)
            .then(verify("verify", Method::Head))
            .then(
                Step::new("put-fallback", "end-6", Method::Put, Url::Location)
                    .query("digest", d)
                    .octets(Body::Blob {
                        blob: self.blob,
                        start: 0,
                        end: None,
                    })
                    .when(When::PrevStatus(202)),
            )
            .then(verify("verify-put", Method::Get))
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, ex: &Exchange) -> Option<Exp> {
        let sha512 = cx.content.blob_algo(self.blob) == Some(DigestAlgo::Sha512);
        match ex.label.as_str() {
            "put-fallback" => {
                return Some(
                    Exp::new(&[201], "end-6/put-201")
                        .location(201, "end-6/location")
                        .sha512_declinable(sha512),
                )
            }
            // The Location of a 201 is an existing blob: its HEAD MUST answer 200.
            "verify" => return Some(Exp::new(&[200], "end-11/mounted-head-200")),
            "verify-put" => {
                return Some(Exp::new(&[200], "end-6/location-pullable").check(
                    200,
                    Check::Content {
                        len: cx.blob_len(self.blob),
                        sha256: cx.blob_sha(self.blob),
                        rule: "end-6/location-pullable",
                    },
                ))
            }
            _ => {}
        }
        let st = cx.st;
        let e = if self.succeeds(st) && self.from.is_some() {
            Exp::new(&[201], "end-11/decline-202").alt(&[202], "end-11/mount-202")
        } else if self.succeeds(st) {
            Exp::new(&[201, 202], "end-11/decline-202")
        } else {
            // Mounted from elsewhere (MAY); a 201 for a blob no repository holds is judged by
            // the `verify` step.
            Exp::new(&[202], "end-11/decline-202").alt(&[201], "end-11/cross-mount")
        };
        Some(
            e.continuing(202)
                .continuing(201)
                .location(201, "end-11/location")
                .session_location(202)
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
