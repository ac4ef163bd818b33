//! end-7a / end-7b: manifest pushes by tag or digest (with `?tag=`), with their dependencies
//! pushed first; re-tags; pushes with a wrong or missing `Content-Type`, with missing
//! references, and with malformed bodies.

use super::blob_push;
use super::expect::{Check, Exp, ExpectCx, Found};
use super::gen::{Draw, Transition};
use super::mount::MountBlob;
use super::{Footprint, Ids, Op, Operation, Renumber, Sym};
use crate::model::{classify_reference, is_valid_tag, reference_text, ModelState, RefKind};
use crate::vocab::content::{
    digest_of, sha256_hex, Content, DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST,
};
use crate::vocab::exchange::Exchange;
use crate::vocab::plan::{Body, Method, Plan, Step, Url, When};
use crate::vocab::serde_util::is_default;
use crate::vocab::{DigestAlgo, DigestChoice, ManifestId, Reference, Repo};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// What `Content-Type` accompanies a manifest push.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentTypeChoice {
    /// The manifest's own media type.
    #[default]
    Matching,
    /// Omit the header.
    Missing,
    /// A different, explicit value.
    Other(String),
}

/// A deliberately malformed manifest body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadManifest {
    /// Not JSON at all.
    NotJson,
    /// JSON, but `schemaVersion` is missing or not 2.
    WrongSchemaVersion,
    /// A layer descriptor with a malformed digest.
    BadDescriptorDigest,
    /// A syntactically valid manifest above the 4 MiB limit (expect 413 or 400).
    Oversized,
}

/// PUT `manifest` by tag or by digest, with extra `?tag=` parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushManifest {
    pub repo: Repo,
    pub manifest: ManifestId,
    pub reference: Reference,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub content_type: ContentTypeChoice,
}

/// end-7a with a malformed body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushBadManifest {
    pub repo: Repo,
    pub reference: Reference,
    pub body: BadManifest,
}

impl PushManifest {
    /// A push with the matching `Content-Type` and no `?tag=`.
    pub fn new(repo: Repo, manifest: ManifestId, reference: Reference) -> PushManifest {
        PushManifest {
            repo,
            manifest,
            reference,
            tags: Vec::new(),
            content_type: ContentTypeChoice::Matching,
        }
    }
}

pub const TRANSITIONS: &[Transition] = &[
    Transition {
        name: "push_manifest",
        invalid: false,
        offer: |d| {
            let Some(target) = d.manifest() else {
                return Vec::new();
            };
            let repo = d.repo();
            with_dependencies(d, repo, target)
        },
    },
    Transition {
        name: "retag",
        invalid: false,
        offer: |d| {
            let candidates: Vec<(Repo, ManifestId)> = d
                .stored_manifests()
                .into_iter()
                .filter(|(r, _, m)| {
                    d.content
                        .manifest_digest(*m)
                        .is_some_and(|x| x.starts_with("sha256:"))
                        && d.st.manifest_pushable(*r, *m, d.content).is_ok()
                })
                .map(|(r, _, m)| (r, m))
                .collect();
            let Some((repo, manifest)) = d.pick(&candidates) else {
                return Vec::new();
            };
            let tag = d.tag();
            vec![Op::PushManifest(PushManifest::new(
                repo,
                manifest,
                Reference::Tag(tag),
            ))]
        },
    },
    Transition {
        name: "push_bad_manifest",
        invalid: true,
        offer: |d| {
            let body = match d.below(8) {
                0..=2 => BadManifest::NotJson,
                3 | 4 => BadManifest::WrongSchemaVersion,
                5 | 6 => BadManifest::BadDescriptorDigest,
                _ => BadManifest::Oversized,
            };
            let repo = d.repo();
            let reference = Reference::Tag(d.tag());
            vec![Op::PushBadManifest(PushBadManifest {
                repo,
                reference,
                body,
            })]
        },
    },
    Transition {
        name: "content_type_repush",
        invalid: true,
        offer: |d| {
            // A re-push under the same reference: rejected or accepted, the state is the same.
            let mut candidates: Vec<(Repo, ManifestId, Reference)> = d
                .stored_manifests()
                .into_iter()
                .filter(|(_, r, _)| matches!(r, Reference::Digest(_)))
                .map(|(repo, r, m)| (repo, m, r))
                .collect();
            for (repo, t) in d.tagged() {
                if let Some(m) = d.st.tag_target(repo, &t) {
                    if d.st.stored_manifest_digest(repo, m) == d.content.manifest_sha256(m) {
                        candidates.push((repo, m, Reference::Tag(t)));
                    }
                }
            }
            let Some((repo, manifest, reference)) = d.pick(&candidates) else {
                return Vec::new();
            };
            let content_type = if d.chance(1, 2) {
                ContentTypeChoice::Other("application/json".into())
            } else {
                ContentTypeChoice::Missing
            };
            vec![Op::PushManifest(PushManifest {
                content_type,
                ..PushManifest::new(repo, manifest, reference)
            })]
        },
    },
    Transition {
        name: "push_missing_refs",
        invalid: true,
        offer: |d| {
            let repo = d.repo();
            let candidates: Vec<ManifestId> = (0..d.content.manifest_count())
                .map(|i| ManifestId(i as u16))
                .filter(|m| d.st.manifest_pushable(repo, *m, d.content).is_err())
                .collect();
            match d.pick(&candidates) {
                Some(m) => vec![Op::PushManifest(PushManifest::new(
                    repo,
                    m,
                    Reference::Digest(m),
                ))],
                None => Vec::new(),
            }
        },
    },
];

/// Whether manifest `m` names sha512 content anywhere (a descriptor, a `subject`).
fn names_sha512(content: &Content, m: ManifestId) -> bool {
    content
        .manifest(m)
        .is_some_and(|b| b.windows(8).any(|w| w == b"\"sha512:"))
}

/// Pushes `target` to `repo`, preceded by its missing dependencies (blobs pushed or mounted,
/// child manifests pushed by digest): at most 6 ops, within the op budget.
pub fn with_dependencies(d: &mut Draw<'_>, repo: Repo, target: ManifestId) -> Vec<Op> {
    const CHAIN: usize = 6;
    let mut scratch = d.st.clone();
    let mut out = Vec::new();
    while out.len() < CHAIN.min(d.budget) {
        let mut sub = Draw {
            st: &scratch,
            content: d.content,
            repos: d.repos,
            budget: d.budget - out.len(),
            rng: &mut *d.rng,
        };
        let (op, done) = match next_step(&mut sub, repo, target) {
            Some(x) => x,
            None => break,
        };
        op.op().apply(&mut scratch, d.content);
        out.push(op);
        if done {
            break;
        }
    }
    out
}

/// The next op towards pushing `target`, and whether it is `target`'s own push.
fn next_step(d: &mut Draw<'_>, repo: Repo, target: ManifestId) -> Option<(Op, bool)> {
    let n = d.content.manifest_count();
    let mut m = target;
    // Walk down to the first unsatisfied dependency (bounded by the content size).
    for _ in 0..=n {
        if let Some(blob) = d
            .content
            .manifest_blobs(m)
            .iter()
            .copied()
            .find(|b| !d.st.has_blob(repo, *b))
        {
            if d.st.has_blob_anywhere(blob) && d.chance(1, 3) {
                let from = d.st.repos().into_iter().find(|r| d.st.has_blob(*r, blob));
                return Some((Op::MountBlob(MountBlob { repo, blob, from }), false));
            }
            return Some((blob_push::push(d, repo, blob, DigestChoice::Correct), false));
        }
        let child = d.content.manifest_children(m).iter().copied().find(|ch| {
            let digest = d.content.manifest_digest(*ch).unwrap_or_default();
            d.st.manifest_by_digest(repo, digest).is_none()
        });
        match child {
            Some(ch) => m = ch,
            None => break,
        }
    }
    if d.st.manifest_pushable(repo, m, d.content).is_err() {
        return None;
    }
    let is_dependency = m != target;
    let sha512 = d
        .content
        .manifest_digest(m)
        .is_some_and(|x| x.starts_with("sha512:"));
    let push = if is_dependency || sha512 || d.chance(1, 3) {
        let tags = if !is_dependency && !d.chance(1, 3) {
            let k = 1 + d.below(3);
            let mut t: Vec<String> = (0..k).map(|_| d.tag()).collect();
            t.sort();
            t.dedup();
            t
        } else {
            Vec::new()
        };
        PushManifest {
            tags,
            ..PushManifest::new(repo, m, Reference::Digest(m))
        }
    } else {
        PushManifest::new(repo, m, Reference::Tag(d.tag()))
    };
    Some((Op::PushManifest(push), !is_dependency))
}

/// Bodies of deliberately malformed manifests. They never change, so each is built once per
/// process (the oversized one is 4 MiB of JSON; building it per op showed in the engine's
/// profile).
pub fn bad_manifest_body(kind: &BadManifest) -> Bytes {
    static BODIES: [std::sync::OnceLock<Bytes>; 4] = [const { std::sync::OnceLock::new() }; 4];
    let slot = match kind {
        BadManifest::NotJson => 0,
        BadManifest::WrongSchemaVersion => 1,
        BadManifest::BadDescriptorDigest => 2,
        BadManifest::Oversized => 3,
    };
    BODIES[slot]
        .get_or_init(|| build_bad_manifest_body(kind))
        .clone()
}

fn build_bad_manifest_body(kind: &BadManifest) -> Bytes {
    let empty = digest_of(DigestAlgo::Sha256, b"");
    let base = |layer_digest: &str, version: serde_json::Value, extra: Option<String>| {
        let mut m = serde_json::json!({
            "schemaVersion": version,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": empty, "size": 0},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": 0}],
        });
        if let (Some(x), Some(o)) = (extra, m.as_object_mut()) {
            o.insert(
                "annotations".into(),
                serde_json::json!({"io.ocidiff.padding": x}),
            );
        }
        Bytes::from(serde_json::to_vec(&m).unwrap_or_default())
    };
    match kind {
        BadManifest::NotJson => Bytes::from_static(b"this is { not json"),
        BadManifest::WrongSchemaVersion => base(&empty, serde_json::json!(1), None),
        BadManifest::BadDescriptorDigest => base("sha256:xyz", serde_json::json!(2), None),
        BadManifest::Oversized => base(
            &empty,
            serde_json::json!(2),
            Some("a".repeat((4 << 20) + 1024)),
        ),
    }
}

impl PushManifest {
    /// Whether a spec-exact registry stores the manifest: a valid tag or the manifest's own
    /// digest, and no contradicting `Content-Type`. Missing references do not matter: a
    /// registry MAY reject them, the model (and the reference) accept them. Our manifests
    /// always carry `mediaType`: without a `Content-Type` the registry takes it from there; a
    /// different `Content-Type` contradicts it.
    pub fn valid(&self, content: &Content) -> bool {
        let Some(media_type) = content.manifest_media_type(self.manifest) else {
            return false;
        };
        if let ContentTypeChoice::Other(ct) = &self.content_type {
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
        !self.reference_bad(content)
    }

    /// The reference is not a valid tag or the manifest's own digest, or a `?tag=` is invalid.
    fn reference_bad(&self, content: &Content) -> bool {
        let m = self.manifest;
        (match classify_reference(&self.reference, content) {
            RefKind::Invalid(_) => true,
            RefKind::Digest(d) => {
                content.manifest_digest(m) != Some(d.as_str())
                    && content.manifest_sha256(m) != Some(d.as_str())
            }
            RefKind::Tag(_) => false,
        }) || self.tags.iter().any(|t| !is_valid_tag(t))
    }

    /// The manifest is already stored under this reference.
    fn already_there(&self, st: &ModelState, content: &Content) -> bool {
        match &self.reference {
            Reference::Tag(t) => {
                st.tag_target(self.repo, t) == Some(self.manifest)
                    && st.stored_manifest_digest(self.repo, self.manifest)
                        == content.manifest_sha256(self.manifest)
            }
            _ => st.resolve(self.repo, &self.reference) == Some(self.manifest),
        }
    }

    fn by_digest(&self, content: &Content) -> bool {
        matches!(
            classify_reference(&self.reference, content),
            RefKind::Digest(_)
        )
    }

    fn expect_valid(&self, cx: &ExpectCx<'_>, ex: &Exchange) -> Exp {
        let (content, m) = (cx.content, self.manifest);
        let stored = match classify_reference(&self.reference, content) {
            RefKind::Digest(d) => d,
            _ => content.manifest_sha256(m).unwrap_or_default().to_string(),
        };
        let by_digest = self.by_digest(content);
        let missing = cx.st.manifest_pushable(self.repo, m, content).is_err();
        let subject_missing = content
            .manifest_subject(m)
            .is_some_and(|s| !cx.st.has_manifest(self.repo, s));
        let fail = if missing {
            // Rejecting is allowed; failing otherwise is no MUST of its own.
            "http/server-error"
        } else if subject_missing {
            "end-7/missing-subject"
        } else {
            "end-7/put-201"
        };
        let mut e = Exp::new(&[201], fail)
            .location(201, "end-7/location")
            .check(
                201,
                Check::HeaderEqIfPresent {
                    name: "docker-content-digest",
                    value: stored.clone(),
                    rule: "end-7/digest",
                },
            );
        // A registry that declines sha512 may reject any manifest that names sha512 content
        // (its own digest, a descriptor, a `subject`) with any 4xx: "if the client provided
        // digest is invalid or uses an unsupported algorithm, the registry SHOULD respond with
        // a response code `400 Bad Request`", no error code required.
        let sha512 = stored.starts_with("sha512:") || names_sha512(content, m);
        if sha512 {
            e = e.alt_range(400, 499, "end-7/algo-unsupported");
        }
        if by_digest && !self.tags.is_empty() {
            e = e.alt_range(400, 499, "end-7b/tags-rejected");
        }
        if !missing && !cx.facts.pushes && !cx.is_reference {
            // No manifest push of this case was accepted: a registry that does not implement
            // pushing (Push is a SHOULD category), not one that fails this manifest.
            e = e.alt_range(400, 499, "end-7/push-unsupported");
        }
        if missing {
            // "A registry MAY reject ..." and then "MUST result in one or more
            // MANIFEST_BLOB_UNKNOWN errors"; another reason (an algorithm it does not know) may
            // come first.
            e = e.alt_range(400, 499, "end-7/missing-refs-rejected");
            if !sha512 {
                e = e.check_range(
                    400,
                    499,
                    Check::ErrorCode {
                        codes: vec!["MANIFEST_BLOB_UNKNOWN"],
                        rule: "end-7/manifest-blob-unknown",
                    },
                );
            }
        }
        let is_image = matches!(
            content.manifest_media_type(m),
            Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST)
        );
        if let (true, Some(s)) = (is_image, content.manifest_subject(m)) {
            let rule = if cx.is_reference || cx.facts.referrers == Some(true) {
                "end-7/oci-subject"
            } else {
                "end-7/oci-subject-unsupported"
            };
            e = e.header_eq(
                201,
                "oci-subject",
                content.manifest_digest(s).unwrap_or_default(),
                rule,
            );
        }
        if by_digest && !self.tags.is_empty() {
            let mut want = self.tags.clone();
            want.sort();
            want.dedup();
            let present = ex.observation.header("oci-tag").is_some();
            e = e.check(
                201,
                if present || cx.is_reference {
                    Check::HeaderEq {
                        name: "oci-tag",
                        value: want.join(", "),
                        rule: "end-7b/oci-tag",
                    }
                } else {
                    Check::HeaderPresent {
                        name: "oci-tag",
                        rule: "end-7b/tags-unsupported",
                    }
                },
            );
        }
        e
    }
}

impl Operation for PushManifest {
    fn kind(&self, st: &ModelState, content: &Content) -> Option<&'static str> {
        content.manifest(self.manifest)?;
        if self.content_type != ContentTypeChoice::Matching {
            return self
                .already_there(st, content)
                .then_some("content_type_repush");
        }
        Some(if self.reference_bad(content) {
            "bad_tag_reference"
        } else if st
            .manifest_pushable(self.repo, self.manifest, content)
            .is_ok()
        {
            "push_manifest"
        } else {
            "push_missing_refs"
        })
    }

    fn apply(&self, st: &mut ModelState, content: &Content) {
        if !self.valid(content) {
            return;
        }
        let (key, tag) = match classify_reference(&self.reference, content) {
            RefKind::Digest(d) => (d, None),
            RefKind::Tag(t) => match content.manifest_sha256(self.manifest) {
                Some(d) => (d.to_string(), Some(t)),
                None => return,
            },
            RefKind::Invalid(_) => return,
        };
        st.store_manifest(self.repo, &key, self.manifest);
        match tag {
            Some(t) => st.set_tag(self.repo, &t, &key),
            None => {
                for t in &self.tags {
                    st.set_tag(self.repo, t, &key);
                }
            }
        }
    }

    fn plan(&self, content: &Content) -> Plan {
        if content.manifest(self.manifest).is_none() {
            return Plan::one(Step::new(
                "put",
                "end-7a",
                Method::Put,
                Url::Unavailable("unknown manifest"),
            ));
        }
        let url = Url::repo_escaped(
            self.repo,
            "manifests/",
            &reference_text(&self.reference, content),
        );
        let endpoint = if self.tags.is_empty() {
            "end-7a"
        } else {
            "end-7b"
        };
        let mut step = Step::new("put", endpoint, Method::Put, url);
        for t in &self.tags {
            step = step.query("tag", t.as_str());
        }
        step = match &self.content_type {
            ContentTypeChoice::Matching => step.header(
                "content-type",
                content
                    .manifest_media_type(self.manifest)
                    .unwrap_or(OCI_MANIFEST),
            ),
            ContentTypeChoice::Missing => step,
            ContentTypeChoice::Other(o) => step.header("content-type", o.as_str()),
        };
        Plan::one(step.body(Body::Manifest(self.manifest)))
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, ex: &Exchange) -> Option<Exp> {
        if ex.request.method != "PUT" {
            return None;
        }
        Some(if self.content_type != ContentTypeChoice::Matching {
            // "If a manifest includes a `mediaType` field, clients MUST set the `Content-Type`
            // header to the value specified by the `mediaType` field": a client MUST broken. The
            // manifest is already stored under this reference, so any 2xx or 4xx leaves the
            // state as it was.
            Exp::range(200, 499, "http/server-error")
        } else if self.reference_bad(cx.content) {
            // "the `<tag-or-digest>` MUST be either a) a digest or b) a tag": a client MUST.
            Exp::client_error()
        } else {
            self.expect_valid(cx, ex)
        })
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, st: &ModelState, content: &Content) -> Footprint {
        let (repo, m) = (self.repo, self.manifest);
        let mut f = Footprint::default();
        for b in content.manifest_blobs(m) {
            f = f.read(Sym::Blob(repo, *b));
        }
        for c in content.manifest_children(m) {
            f = f.read(Sym::Manifest(repo, *c));
        }
        f = f.write(Sym::Manifest(repo, m));
        if !matches!(self.reference, Reference::Digest(_)) || !self.tags.is_empty() {
            f = f.write(Sym::Tags(repo));
        }
        if let Some(s) = content.manifest_subject(m) {
            f = f.write(Sym::Referrers(repo, s));
        }
        f.creates(st, repo)
    }

    fn ids(&self) -> Ids {
        let mut ids = Ids::manifests([self.manifest]);
        ids.manifests.extend(self.reference.manifest());
        ids
    }

    fn renumber(&mut self, r: &Renumber) {
        self.manifest = r.manifest(self.manifest);
        self.reference = self.reference.renumbered(|m| r.manifest(m));
    }
}

impl Operation for PushBadManifest {
    fn kind(&self, _: &ModelState, _: &Content) -> Option<&'static str> {
        Some("push_bad_manifest")
    }

    fn apply(&self, _: &mut ModelState, _: &Content) {}

    fn plan(&self, content: &Content) -> Plan {
        let url = Url::repo_escaped(
            self.repo,
            "manifests/",
            &reference_text(&self.reference, content),
        );
        let put = Plan::one(
            Step::new("put", "end-7a", Method::Put, url.clone())
                .header("content-type", OCI_MANIFEST)
                .body(Body::Bytes(bad_manifest_body(&self.body))),
        );
        if self.body == BadManifest::Oversized {
            return put;
        }
        // Accepted anyway: then the registry serves exactly those bytes.
        put.then(
            Step::new("verify", "end-3", Method::Get, url)
                .header("accept", super::refs::manifest_accept())
                .when(When::PrevStatus(201)),
        )
    }

    fn expect(&self, _: &mut ExpectCx<'_>, ex: &Exchange) -> Option<Exp> {
        if ex.label == "verify" {
            let bytes = bad_manifest_body(&self.body);
            return Some(Exp::new(&[200], "end-7/exact-bytes").check(
                200,
                Check::Content {
                    len: bytes.len() as u64,
                    sha256: sha256_hex(&bytes),
                    rule: "end-7/exact-bytes",
                },
            ));
        }
        // Not a manifest the image spec defines: a request clients must not send.
        Some(match self.body {
            BadManifest::Oversized => Exp::new(&[413], "http/server-error")
                .alt_range(400, 499, "end-7/oversized-413")
                .tolerating_client_error()
                .tolerating_transport(),
            _ => Exp::client_error(),
        })
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, _: &ModelState, _: &Content) -> Footprint {
        if matches!(self.reference, Reference::Digest(_)) {
            Footprint::default()
        } else {
            Footprint::default().write(Sym::Tags(self.repo))
        }
    }

    fn ids(&self) -> Ids {
        Ids::manifests(self.reference.manifest())
    }

    fn renumber(&mut self, r: &Renumber) {
        self.reference = self.reference.renumbered(|m| r.manifest(m));
    }
}
