//! end-9 / end-10: deleting manifests (by digest), tags, and blobs.

use super::expect::{Exp, ExpectCx, Found};
use super::gen::Transition;
use super::refs::{is_sha512, reads};
use super::{Footprint, Ids, Op, Operation, Renumber, Sym};
use crate::model::{classify_reference, reference_text, ModelState, RefKind};
use crate::vocab::content::Content;
use crate::vocab::exchange::Exchange;
use crate::vocab::plan::{Method, Plan, Step, Url};
use crate::vocab::{BlobId, DigestAlgo, Reference, Repo};
use serde::{Deserialize, Serialize};

/// end-9 by tag or digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteManifest {
    pub repo: Repo,
    pub reference: Reference,
}

/// end-10.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteBlob {
    pub repo: Repo,
    pub blob: BlobId,
}

pub const TRANSITIONS: &[Transition] = &[
    Transition {
        name: "delete_manifest",
        invalid: false,
        offer: |d| {
            let tagged = d.tagged();
            if !tagged.is_empty() && d.chance(1, 2) {
                if let Some((repo, t)) = d.pick(&tagged) {
                    return vec![Op::DeleteManifest(DeleteManifest {
                        repo,
                        reference: Reference::Tag(t),
                    })];
                }
            }
            match d.pick(&d.stored_manifests()) {
                Some((repo, reference, _)) => {
                    vec![Op::DeleteManifest(DeleteManifest { repo, reference })]
                }
                None => Vec::new(),
            }
        },
    },
    Transition {
        name: "delete_blob",
        invalid: false,
        offer: |d| match d.pick(&d.linked_blobs()) {
            Some((repo, blob)) => vec![Op::DeleteBlob(DeleteBlob { repo, blob })],
            None => Vec::new(),
        },
    },
];

impl Operation for DeleteManifest {
    fn kind(&self, st: &ModelState, content: &Content) -> Option<&'static str> {
        Some(match classify_reference(&self.reference, content) {
            RefKind::Digest(_) if st.resolve(self.repo, &self.reference).is_some() => {
                "delete_manifest"
            }
            RefKind::Digest(_) => "delete_missing_manifest",
            RefKind::Tag(t) if st.tags(self.repo).contains(&t) => "delete_tag",
            RefKind::Tag(_) => "delete_missing_tag",
            RefKind::Invalid(_) => "bad_tag_reference",
        })
    }

    fn apply(&self, st: &mut ModelState, content: &Content) {
        match classify_reference(&self.reference, content) {
            RefKind::Digest(d) => {
                st.delete_manifest(self.repo, &d);
            }
            RefKind::Tag(t) => {
                st.delete_tag(self.repo, &t);
            }
            RefKind::Invalid(_) => {}
        }
    }

    fn plan(&self, content: &Content) -> Plan {
        let url = Url::repo_escaped(
            self.repo,
            "manifests/",
            &reference_text(&self.reference, content),
        );
        Plan::one(Step::new("delete", "end-9", Method::Delete, url))
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        let (st, content, repo) = (cx.st, cx.content, self.repo);
        let e = match classify_reference(&self.reference, content) {
            // "The `<tag-or-digest>` MUST NOT be in any other format": a client MUST.
            RefKind::Invalid(_) => Exp::client_error(),
            RefKind::Digest(_) if st.resolve(repo, &self.reference).is_some() => {
                Exp::new(&[202], "end-9/202").alt(&[400, 405], "end-9/delete-disabled")
            }
            RefKind::Tag(t) if st.tags(repo).contains(&t) => {
                Exp::new(&[202], "end-9/tag-202").alt(&[400, 405], "end-9/tag-delete-unsupported")
            }
            _ if !st.repo_exists(repo) => {
                Exp::new(&[404], "end-9/repo-404").alt(&[400, 405], "end-9/delete-disabled")
            }
            RefKind::Tag(t) if st.dangling_tags(repo).contains(&t) => {
                // A tag whose manifest was deleted: gone, or still there to be deleted.
                Exp::new(&[404], "http/server-error")
                    .alt(&[202], "end-9/unknown")
                    .continuing(202)
                    .alt(&[400, 405], "end-9/tag-delete-unsupported")
                    .tolerating_client_error()
            }
            RefKind::Digest(_) | RefKind::Tag(_) => Exp::new(&[404], "http/server-error")
                .alt(&[400, 405], "end-9/delete-disabled")
                .alt_range(200, 499, "end-9/unknown"),
        };
        Some(e.sha512_declinable(is_sha512(&self.reference, content)))
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, st: &ModelState, content: &Content) -> Footprint {
        let mut f = reads(st, self.repo, &self.reference).write(Sym::Tags(self.repo));
        if let Some(m) = st.resolve(self.repo, &self.reference) {
            f = f.write(Sym::Manifest(self.repo, m));
            if let Some(s) = content.manifest_subject(m) {
                f = f.write(Sym::Referrers(self.repo, s));
            }
        }
        f
    }

    fn ids(&self) -> Ids {
        Ids::manifests(self.reference.manifest())
    }

    fn renumber(&mut self, r: &Renumber) {
        self.reference = self.reference.renumbered(|m| r.manifest(m));
    }
}

impl Operation for DeleteBlob {
    fn kind(&self, st: &ModelState, content: &Content) -> Option<&'static str> {
        content.blob(self.blob)?;
        Some(if st.has_blob(self.repo, self.blob) {
            "delete_blob"
        } else {
            "delete_missing_blob"
        })
    }

    fn apply(&self, st: &mut ModelState, content: &Content) {
        if let Some(d) = content.blob_digest(self.blob) {
            st.unlink_blob(self.repo, d);
        }
    }

    fn plan(&self, content: &Content) -> Plan {
        let d = content.blob_digest(self.blob).unwrap_or("sha256:unknown");
        Plan::one(Step::new(
            "delete",
            "end-10",
            Method::Delete,
            Url::repo(self.repo, format!("blobs/{d}")),
        ))
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        let exists = cx.st.has_blob(self.repo, self.blob);
        let e = if exists {
            Exp::new(&[202], "end-10/202")
        } else {
            Exp::new(&[404], "end-10/404")
        }
        .alt(&[400, 405], "end-10/delete-disabled");
        let sha512 = cx.content.blob_algo(self.blob) == Some(DigestAlgo::Sha512);
        Some(e.sha512_declinable(sha512))
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, _: &ModelState, _: &Content) -> Footprint {
        Footprint::default()
            .read(Sym::Blob(self.repo, self.blob))
            .write(Sym::Blob(self.repo, self.blob))
    }

    fn ids(&self) -> Ids {
        Ids::blob(self.blob)
    }

    fn renumber(&mut self, r: &Renumber) {
        self.blob = r.blob(self.blob);
    }
}
