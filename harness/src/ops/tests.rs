//! Every operation has every part; what each op does to the model.

use super::*;
use crate::vocab::exchange::{BodyFacts, Observation, RequestRecord};
use crate::vocab::plan::{Seg, Url};
use crate::vocab::{BlobId, ManifestId, Reference};
use std::collections::BTreeSet;

fn content_of(seq: &Sequence) -> Content {
    Content::render(&seq.content).unwrap()
}

/// An exchange for step `label` answered with `status` (no headers, no body).
fn answered(label: &str, endpoint: &str, method: &str, status: u16) -> Exchange {
    Exchange {
        label: label.into(),
        endpoint: endpoint.into(),
        request: RequestRecord {
            method: method.into(),
            url: "http://127.0.0.1:1/v2/ns/r0/x".into(),
            headers: Default::default(),
            body_len: 0,
            body_sha256: None,
        },
        observation: Observation {
            status,
            transport_error: None,
            headers: Default::default(),
            body: BodyFacts::Empty,
            redirect: None,
        },
    }
}

/// The test the issue asks for: every operation is in the example sequence, and each one has
/// a plan, an expectation for its first step, a kind in the state it meets, ids that renumber
/// consistently, and a footprint that writes whenever `apply` changes the model.
#[test]
fn every_operation_has_every_part() {
    let seq = every_op();
    let content = content_of(&seq);
    let names: BTreeSet<&str> = seq.ops.iter().map(|o| o.name()).collect();
    let all: BTreeSet<&str> = Op::NAMES.iter().copied().collect();
    assert_eq!(
        names, all,
        "ops/examples/every_op.toml must use every operation"
    );

    let mut st = ModelState::new();
    st.learn(&content);
    for (i, op) in seq.ops.iter().enumerate() {
        let o = op.op();
        let what = format!("op {i} ({})", op.name());
        // Plan: at least one step, each with a label and an endpoint id.
        let plan = o.plan(&content);
        assert!(!plan.steps.is_empty(), "{what}: empty plan");
        for s in &plan.steps {
            assert!(!s.label.is_empty(), "{what}: unlabelled step");
            assert!(
                s.endpoint == "catalog" || s.endpoint.starts_with("end-"),
                "{what}: endpoint {}",
                s.endpoint
            );
            if let Url::Path(segs) = &s.url {
                assert!(matches!(segs.first(), Some(Seg::Lit(l)) if l.starts_with("/v2/")));
            }
        }
        // Expectation of the first step.
        let facts = expect::TargetFacts::default();
        let mut memo = expect::TargetMemo::default();
        let mut cx = expect::ExpectCx {
            st: &st,
            content: &content,
            facts: &facts,
            is_reference: true,
            sent: 0,
            memo: &mut memo,
        };
        let first = &plan.steps[0];
        let ex = answered(&first.label, first.endpoint, first.method.as_str(), 200);
        assert!(o.expect(&mut cx, &ex).is_some(), "{what}: no expectation");
        // Kind: offered in the state it meets.
        assert!(o.kind(&st, &content).is_some(), "{what}: not offered");
        // Ids: renumbering with the identity changes nothing; a shift moves exactly the ids.
        let ids = o.ids();
        let mut same = op.clone();
        same.op_mut().renumber(&Renumber::default());
        assert_eq!(&same, op, "{what}: identity renumbering changed the op");
        let mut shift = Renumber::default();
        for b in &ids.blobs {
            shift.blobs.insert(b.0, b.0 + 100);
        }
        for m in &ids.manifests {
            shift.manifests.insert(m.0, m.0 + 100);
        }
        let mut moved = op.clone();
        moved.op_mut().renumber(&shift);
        let moved_ids = moved.op().ids();
        assert_eq!(
            moved_ids.blobs,
            ids.blobs
                .iter()
                .map(|b| BlobId(b.0 + 100))
                .collect::<Vec<_>>(),
            "{what}"
        );
        assert_eq!(
            moved_ids.manifests,
            ids.manifests
                .iter()
                .map(|m| ManifestId(m.0 + 100))
                .collect::<Vec<_>>(),
            "{what}"
        );
        // Footprint: an op that changes the model writes something.
        let fp = o.footprint(&st, &content);
        let before = st.clone();
        o.apply(&mut st, &content);
        if st != before {
            assert!(
                fp.mutating(),
                "{what}: changes the model but writes nothing"
            );
        }
        // The op round-trips through its scenario form.
        let text = toml::to_string(&Sequence {
            content: Default::default(),
            ops: vec![op.clone()],
        })
        .unwrap();
        assert_eq!(&Sequence::from_toml(&text).unwrap().ops[0], op, "{what}");
    }
}

/// blob0 10 B, blob1 20 B, blob2 and blob3 empty (the same object); m0 = image(b0; b1),
/// m1 = image(b0; b2) -> m0 (sbom), m2 = image(b0) -> m0, m3 = index(m0).
fn model_content() -> &'static str {
    r#"
[content]
blobs = [{ size = 10, seed = 1 }, { size = 20, seed = 2 }, { size = 0, seed = 3 }, { size = 0, seed = 4 }]
[[content.manifests]]
kind = "image"
config = 0
layers = [1]
[[content.manifests]]
kind = "image"
config = 0
layers = [2]
subject = 0
artifact_type = "application/vnd.example.sbom.v1"
[[content.manifests]]
kind = "image"
config = 0
layers = []
subject = 0
[[content.manifests]]
kind = "index"
manifests = [0]
"#
}

/// Applies ops written as TOML `[[ops]]` tables to `st`.
fn apply(st: &mut ModelState, content: &Content, ops: &str) {
    let seq = Sequence::from_toml(ops).unwrap();
    for op in &seq.ops {
        op.op().apply(st, content);
    }
}

fn model() -> (Content, ModelState) {
    let seq = Sequence::from_toml(model_content()).unwrap();
    let content = content_of(&seq);
    let mut st = ModelState::new();
    st.learn(&content);
    (content, st)
}

fn push(repo: u8, blob: u16) -> String {
    format!("[[ops]]\nop = \"push_blob\"\nrepo = {repo}\nblob = {blob}\nmethod = \"monolithic\"\n")
}

#[test]
fn blobs_push_mount_delete() {
    let (c, mut s) = model();
    assert!(!s.repo_exists(Repo(0)));
    apply(
        &mut s,
        &c,
        "[[ops]]\nop = \"push_blob\"\nrepo = 0\nblob = 0\nmethod = \"monolithic\"\ndigest = \"wrong\"\n",
    );
    assert!(!s.repo_exists(Repo(0)) && !s.has_blob(Repo(0), BlobId(0)));
    apply(&mut s, &c, &(push(0, 0) + &push(0, 2)));
    assert!(
        s.has_blob(Repo(0), BlobId(0)) && s.has_blob(Repo(0), BlobId(3)),
        "content-addressed"
    );
    assert!(!s.has_blob(Repo(1), BlobId(0)) && s.has_blob_anywhere(BlobId(0)));
    // A mount the source cannot serve is uploaded through the session a 202 opens.
    apply(
        &mut s,
        &c,
        "[[ops]]\nop = \"mount_blob\"\nrepo = 1\nblob = 1\nfrom = 0\n",
    );
    assert!(s.has_blob(Repo(1), BlobId(1)) && s.repo_exists(Repo(1)));
    apply(
        &mut s,
        &c,
        "[[ops]]\nop = \"mount_blob\"\nrepo = 1\nblob = 0\n",
    );
    assert!(s.has_blob(Repo(1), BlobId(0)));
    apply(
        &mut s,
        &c,
        "[[ops]]\nop = \"delete_blob\"\nrepo = 0\nblob = 0\n",
    );
    assert!(
        !s.has_blob(Repo(0), BlobId(0)) && s.has_blob(Repo(1), BlobId(0)) && s.repo_exists(Repo(0))
    );
    assert_eq!(s.repos(), vec![Repo(0), Repo(1)]);
}

#[test]
fn sessions() {
    let (c, mut s) = model();
    let sess = Session(0);
    apply(
        &mut s,
        &c,
        "[[ops]]\nop = \"start_upload\"\nrepo = 2\nsession = 0\nblob = 1\n",
    );
    assert_eq!(s.session(sess).unwrap().offset, 0);
    let patch = |a: u32, b: u32| {
        format!("[[ops]]\nop = \"patch_chunk\"\nsession = 0\nstart = {a}\nend = {b}\n")
    };
    apply(&mut s, &c, &patch(0, 5));
    apply(&mut s, &c, &patch(3, 8)); // out of order: 416, no change
    assert_eq!(s.session(sess).unwrap().offset, 5);
    apply(&mut s, &c, &patch(5, 8));
    assert_eq!(s.session(sess).unwrap().offset, 8);
    let complete = |rest: bool| upload::CompleteUpload {
        session: sess,
        rest_in_body: rest,
        digest: crate::vocab::DigestChoice::Correct,
        gap: false,
    };
    assert!(!upload::completes(&s, &complete(false), &c));
    apply(
        &mut s,
        &c,
        "[[ops]]\nop = \"complete_upload\"\nsession = 0\nrest_in_body = true\ndigest = \"wrong\"\n",
    );
    assert!(s.session(sess).is_some() && !s.has_blob(Repo(2), BlobId(1)));
    assert!(
        s.session_uncertain(sess),
        "a failed completion leaves the session unspecified"
    );
    apply(
        &mut s,
        &c,
        "[[ops]]\nop = \"complete_upload\"\nsession = 0\nrest_in_body = true\n",
    );
    assert!(s.session(sess).is_none() && s.session_closed(sess) && s.has_blob(Repo(2), BlobId(1)));
    apply(
        &mut s,
        &c,
        "[[ops]]\nop = \"start_upload\"\nrepo = 2\nsession = 0\nblob = 0\ndigest_algorithm = \"sha256\"\n",
    );
    assert!(!s.session_closed(sess) && !s.session_uncertain(sess));
    apply(&mut s, &c, "[[ops]]\nop = \"cancel_upload\"\nsession = 0\n");
    assert!(s.session(sess).is_none() && s.session_closed(sess));
}

fn push_manifest(repo: u8, m: u16, reference: &str, tags: &[&str]) -> String {
    let tags: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "[[ops]]\nop = \"push_manifest\"\nrepo = {repo}\nmanifest = {m}\nreference = {reference}\ntags = [{}]\n",
        tags.join(", ")
    )
}

#[test]
fn manifests_tags_referrers() {
    let (c, mut s) = model();
    let r = Repo(0);
    assert_eq!(
        s.manifest_pushable(r, ManifestId(0), &c).unwrap_err().len(),
        2
    );
    // Missing blobs: a registry MAY reject; the model accepts.
    apply(&mut s, &c, &push_manifest(2, 0, "{ tag = \"v1\" }", &[]));
    assert!(s.has_manifest(Repo(2), ManifestId(0)));
    apply(&mut s, &c, &(push(0, 0) + &push(0, 1)));
    assert!(s.manifest_pushable(r, ManifestId(0), &c).is_ok());
    // Wrong content type, invalid tag or another manifest's digest: rejected.
    apply(
        &mut s,
        &c,
        &(push_manifest(0, 0, "{ tag = \"v1\" }", &[])
            + "content_type = { other = \"application/json\" }\n"),
    );
    apply(&mut s, &c, &push_manifest(0, 0, "{ raw = \"-x\" }", &[]));
    apply(&mut s, &c, &push_manifest(0, 0, "{ digest = 1 }", &[]));
    assert!(!s.has_manifest(r, ManifestId(0)));

    apply(&mut s, &c, &push_manifest(0, 0, "{ tag = \"v1\" }", &[]));
    apply(
        &mut s,
        &c,
        &push_manifest(0, 0, "{ digest = 0 }", &["latest", "V1"]),
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
    assert_eq!(s.resolve(r, &Reference::Raw(d0)), Some(ManifestId(0)));

    // The index needs its child in the same repo.
    assert!(s.manifest_pushable(Repo(1), ManifestId(3), &c).is_err());
    assert!(s.manifest_pushable(r, ManifestId(3), &c).is_ok());
    apply(&mut s, &c, &push_manifest(0, 3, "{ tag = \"v1\" }", &[]));
    assert_eq!(s.tag_target(r, "v1"), Some(ManifestId(3)), "tag moved");

    // Referrers: subject may be missing; listed by digest with artifactType.
    apply(&mut s, &c, &(push(1, 0) + &push(1, 2)));
    apply(&mut s, &c, &push_manifest(1, 1, "{ digest = 1 }", &[]));
    apply(&mut s, &c, &push_manifest(1, 2, "{ tag = \"sig\" }", &[]));
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
    let cfg_typed = s.referrers(
        Repo(1),
        ManifestId(0),
        Some(crate::vocab::content::OCI_CONFIG),
        &c,
    );
    assert_eq!(cfg_typed.len(), 1);
    assert!(s.referrers(r, ManifestId(0), None, &c).is_empty());

    // Delete by tag removes the tag only; by digest removes the manifest and its tags.
    apply(
        &mut s,
        &c,
        "[[ops]]\nop = \"delete_manifest\"\nrepo = 0\nreference = { tag = \"V1\" }\n",
    );
    assert!(s.has_manifest(r, ManifestId(0)) && s.tags(r) == vec!["latest", "v1"]);
    apply(
        &mut s,
        &c,
        "[[ops]]\nop = \"delete_manifest\"\nrepo = 0\nreference = { digest = 0 }\n",
    );
    assert!(!s.has_manifest(r, ManifestId(0)));
    assert_eq!(s.tags(r), vec!["v1"]);
    assert_eq!(s.tag_target(r, "v1"), Some(ManifestId(3)));
    apply(
        &mut s,
        &c,
        "[[ops]]\nop = \"delete_manifest\"\nrepo = 1\nreference = { tag = \"sig\" }\n",
    );
    assert_eq!(
        s.referrers(Repo(1), ManifestId(0), None, &c).len(),
        2,
        "untagged referrer stays"
    );
}

#[test]
fn bad_manifests_render() {
    use manifest_push::{bad_manifest_body, BadManifest};
    assert!(bad_manifest_body(&BadManifest::Oversized).len() > 4 << 20);
    let v: serde_json::Value =
        serde_json::from_slice(&bad_manifest_body(&BadManifest::WrongSchemaVersion)).unwrap();
    assert_eq!(v["schemaVersion"], 1);
    assert!(
        serde_json::from_slice::<serde_json::Value>(&bad_manifest_body(&BadManifest::NotJson))
            .is_err()
    );
}
