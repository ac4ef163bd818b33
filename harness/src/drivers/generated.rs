//! Workflows generated from content instead of written by hand: the push, pull, discovery and
//! management checks of any content (`Builder`). The read-only mode (`read_only`) checks
//! imported content with the pull and discovery parts; the data kinds (`data_kinds`) cross
//! all four with the content shapes of the official suite's data sets.
//!
//! Ops and checks are written as the scenario format's JSON (the same serde as the TOML
//! files), so a generated workflow is a scenario like any other.

use crate::ops::Op;
use crate::scenario::Expect;
use crate::vocab::content::{algo_of, Content, OCI_INDEX};
use crate::vocab::ids::DigestAlgo;
use crate::vocab::ManifestId;
use serde_json::{json, Value};

/// Ops and their checks, appended in order.
#[derive(Default)]
pub struct Builder {
    pub ops: Vec<Op>,
    pub expect: Vec<Expect>,
}

/// The names of the push checks `Builder::push` wrote, for the `requires` of later checks.
#[derive(Default)]
pub struct Pushed {
    pub manifests: Named,
    pub blobs: Named,
    pub tags: Vec<String>,
}

fn op(v: Value) -> Op {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("generated op {v}: {e}"))
}

fn check(v: Value) -> Expect {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("generated check {v}: {e}"))
}

/// Whether manifest `m` is named by a sha512 digest.
fn is_sha512_manifest(content: &Content, m: u16) -> bool {
    content
        .manifest_digest(ManifestId(m))
        .is_some_and(|d| algo_of(d) == DigestAlgo::Sha512)
}

/// The manifests among `among` whose subject is `subject`.
pub fn referrers_of(content: &Content, among: &[u16], subject: u16) -> Vec<u16> {
    among
        .iter()
        .copied()
        .filter(|m| content.manifest_subject(ManifestId(*m)) == Some(ManifestId(subject)))
        .collect()
}

/// How the content's manifests and blobs are named in check names.
fn m_name(m: u16) -> String {
    format!("manifest {m}")
}

fn b_name(b: u16) -> String {
    format!("blob {b}")
}

impl Builder {
    /// Appends `o` with `checks` on it.
    pub fn add(&mut self, o: Value, checks: Vec<Value>) {
        let i = self.ops.len();
        self.ops.push(op(o));
        for mut c in checks {
            c["op"] = json!(i);
            self.expect.push(check(c));
        }
    }

    /// The manifests to push, children before parents (each once), without `skip`.
    pub fn push_order(content: &Content, skip: &[u16]) -> Vec<u16> {
        fn visit(m: u16, c: &Content, seen: &mut Vec<u16>, skip: &[u16], depth: u32) {
            if seen.contains(&m) || skip.contains(&m) || depth > 16 {
                return;
            }
            for ch in c.manifest_children(ManifestId(m)) {
                visit(ch.0, c, seen, skip, depth + 1);
            }
            seen.push(m);
        }
        let mut order = Vec::new();
        for m in 0..content.manifest_count() as u16 {
            visit(m, content, &mut order, skip, 0);
        }
        order
    }

    /// Pushes every blob and manifest but `skip_blobs` / `skip_manifests` (manifests by digest,
    /// children first), then the tags. With `checked`, each push is a check ("push blob 1:
    /// 201", ...); `declinable` manifests (missing references, sha512) may be declined with
    /// 400. Returns the names of the push checks, for `requires`.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        content: &Content,
        tags: &[(String, u16)],
        skip_blobs: &[u16],
        skip_manifests: &[u16],
        declinable: &[u16],
        checked: bool,
    ) -> Pushed {
        let mut blob_checks = Vec::new();
        let mut manifest_checks = Vec::new();
        let mut tag_checks = Vec::new();
        for b in (0..content.blob_count() as u16).filter(|b| !skip_blobs.contains(b)) {
            let name = format!("push {}: 201", b_name(b));
            let sha512 = content.blob_algo(crate::vocab::BlobId(b)) == Some(DigestAlgo::Sha512);
            let mut c =
                json!({"name": name, "label": "put", "rule": "end-6/put-201", "status": 201});
            if sha512 {
                c["unsupported"] = json!([400]);
            }
            self.add(
                json!({"op": "push_blob", "repo": 0, "blob": b, "method": "monolithic"}),
                if checked { vec![c] } else { Vec::new() },
            );
            if checked {
                blob_checks.push((b, name));
            }
        }
        for m in Self::push_order(content, skip_manifests) {
            let name = format!("push {} by digest: 201", m_name(m));
            // A manifest push depends on the pushes of what it references (a failed blob push
            // is its own finding; the manifest's rejection follows from it).
            let mut deps: Vec<String> = content
                .manifest_blobs(ManifestId(m))
                .iter()
                .filter_map(|b| blob_checks.iter().find(|(x, _): &&(u16, String)| *x == b.0))
                .map(|(_, n)| n.clone())
                .collect();
            deps.extend(
                content
                    .manifest_children(ManifestId(m))
                    .iter()
                    .filter_map(|c| {
                        manifest_checks
                            .iter()
                            .find(|(x, _): &&(u16, String)| *x == c.0)
                    })
                    .map(|(_, n)| n.clone()),
            );
            deps.sort();
            deps.dedup();
            let mut c = json!({"name": name, "rule": "end-7/put-201", "status": 201,
                               "requires": deps});
            let sha512 = is_sha512_manifest(content, m);
            if declinable.contains(&m) || sha512 {
                c["unsupported"] = json!([400]);
            }
            let d = json!({"name": format!("push {}: Docker-Content-Digest", m_name(m)),
                           "rule": "end-7/digest", "requires": [name],
                           "headers": {"docker-content-digest": format!("{{manifest:{m}}}")}});
            self.add(
                json!({"op": "push_manifest", "repo": 0, "manifest": m, "reference": {"digest": m}}),
                if checked { vec![c, d] } else { Vec::new() },
            );
            if checked {
                manifest_checks.push((m, name));
            }
        }
        for (tag, m) in tags {
            let name = format!("push {} as tag {tag}: 201", m_name(*m));
            let deps: Vec<String> = manifest_checks
                .iter()
                .filter(|(x, _)| x == m)
                .map(|(_, n)| n.clone())
                .collect();
            let mut c = json!({"name": name, "rule": "end-7/put-201", "status": 201,
                               "requires": deps});
            if declinable.contains(m) {
                c["unsupported"] = json!([400]);
            }
            if checked {
                tag_checks.push(name.clone());
            }
            self.add(
                json!({"op": "push_manifest", "repo": 0, "manifest": m, "reference": {"tag": tag}}),
                if checked { vec![c] } else { Vec::new() },
            );
        }
        Pushed {
            manifests: manifest_checks,
            blobs: blob_checks,
            tags: tag_checks,
        }
    }

    /// Pull checks: each tag (GET: status, bytes, digest, media type; HEAD: status, digest,
    /// length), each manifest by digest, each blob (GET bytes, HEAD length), and an unknown
    /// tag, manifest and blob (404 and the error code). `requires` names the push check a
    /// manifest's or blob's pulls depend on.
    pub fn pull(
        &mut self,
        content: &Content,
        tags: &[(String, u16)],
        manifests: &[u16],
        blobs: &[u16],
        absent: Option<(u16, u16)>,
        requires: &dyn Fn(Target) -> Vec<String>,
    ) {
        self.add(
            json!({"op": "check_api"}),
            vec![json!({"name": "api-version-check", "rule": "end-1/200", "status": 200})],
        );
        for (tag, m) in tags {
            let by = |what: &str| format!("{what} {tag}");
            let req = requires(Target::Manifest(*m));
            // A push by tag is digested with the registry's own algorithm: a manifest known by
            // a sha512 digest may come back under its sha256 one.
            let sha512 = is_sha512_manifest(content, *m);
            let digest_check = |mut c: Value| {
                if sha512 {
                    c["headers"]
                        .as_object_mut()
                        .map(|h| h.remove("docker-content-digest"));
                    c["present"] = json!(["docker-content-digest"]);
                }
                c
            };
            let ok = by("pull manifest by tag: 200");
            self.add(
                json!({"op": "get_manifest", "repo": 0, "reference": {"tag": tag}}),
                vec![
                    json!({"name": ok, "rule": "end-3/get-200", "status": 200, "requires": req}),
                    json!({"name": by("pull manifest by tag: exact bytes"), "rule": "end-3/get-body",
                           "requires": [ok], "body": {"manifest": m}}),
                    digest_check(json!({"name": by("pull manifest by tag: Docker-Content-Digest"), "rule": "end-3/digest",
                           "requires": [ok],
                           "headers": {"docker-content-digest": format!("{{manifest:{m}}}")}})),
                    json!({"name": by("pull manifest by tag: Content-Type"), "rule": "end-3/content-type",
                           "requires": [ok],
                           "headers": {"content-type-essence": format!("{{manifest-type:{m}}}")}}),
                ],
            );
            let ok = by("HEAD manifest by tag: 200");
            self.add(
                json!({"op": "head_manifest", "repo": 0, "reference": {"tag": tag}}),
                vec![
                    json!({"name": ok, "rule": "end-3/head-200", "status": 200, "requires": req}),
                    digest_check(json!({"name": by("HEAD manifest by tag: Docker-Content-Digest and Content-Length"),
                           "rule": "end-3/digest", "requires": [ok],
                           "headers": {"docker-content-digest": format!("{{manifest:{m}}}"),
                                       "content-length": format!("{{manifest-size:{m}}}")}})),
                ],
            );
        }
        for m in manifests {
            let by = |what: &str| format!("{what} ({})", m_name(*m));
            let req = requires(Target::Manifest(*m));
            let ok = by("pull manifest by digest: 200 and exact bytes");
            self.add(
                json!({"op": "get_manifest", "repo": 0, "reference": {"digest": m}}),
                vec![
                    json!({"name": ok, "rule": "end-3/get-200", "status": 200,
                           "body": {"manifest": m}, "requires": req}),
                    json!({"name": by("pull manifest by digest: Docker-Content-Digest"), "rule": "end-3/digest",
                           "requires": [ok],
                           "headers": {"docker-content-digest": format!("{{manifest:{m}}}")}}),
                ],
            );
            self.add(
                json!({"op": "head_manifest", "repo": 0, "reference": {"digest": m}}),
                vec![
                    json!({"name": by("HEAD manifest by digest: 200 and Content-Length"),
                            "rule": "end-3/head-200", "status": 200, "requires": req,
                            "headers": {"content-length": format!("{{manifest-size:{m}}}")}}),
                ],
            );
        }
        for b in blobs {
            let by = |what: &str| format!("{what} ({})", b_name(*b));
            let req = requires(Target::Blob(*b));
            self.add(
                json!({"op": "get_blob", "repo": 0, "blob": b}),
                vec![
                    json!({"name": by("pull blob: 200 and exact bytes"), "rule": "end-2/get-200",
                            "status": 200, "body": {"blob": b}, "requires": req}),
                ],
            );
            self.add(
                json!({"op": "head_blob", "repo": 0, "blob": b}),
                vec![json!({"name": by("HEAD blob: 200 and Content-Length"), "rule": "end-2/head-200",
                            "status": 200, "requires": req,
                            "headers": {"content-length": format!("{{blob-size:{b}}}")}})],
            );
        }
        self.add(
            json!({"op": "get_manifest", "repo": 0, "reference": {"tag": "ocidiff-no-such-tag"}}),
            vec![
                json!({"name": "unknown tag: 404", "rule": "end-3/404", "status": 404}),
                json!({"name": "unknown tag: MANIFEST_UNKNOWN error body", "rule": "errors/code",
                       "level": "should", "requires": ["unknown tag: 404"],
                       "body": {"kind": "errors", "error_codes": ["MANIFEST_UNKNOWN"]}}),
            ],
        );
        if let Some((am, ab)) = absent {
            self.add(
                json!({"op": "get_manifest", "repo": 0, "reference": {"digest": am}}),
                vec![json!({"name": "unknown manifest digest: 404", "rule": "end-3/404", "status": 404})],
            );
            self.add(
                json!({"op": "get_blob", "repo": 0, "blob": ab}),
                vec![
                    json!({"name": "unknown blob: 404", "rule": "end-2/404", "status": 404}),
                    json!({"name": "unknown blob: BLOB_UNKNOWN error body", "rule": "errors/code",
                           "level": "should", "requires": ["unknown blob: 404"],
                           "body": {"kind": "errors", "error_codes": ["BLOB_UNKNOWN"]}}),
                ],
            );
        }
    }

    /// Discovery checks, the tag list: whole and paged with n=1 (what is listed, and its
    /// order, is judged by the oracle on every page: one finding per bug, not a named check
    /// repeating it).
    pub fn tag_lists(&mut self, requires: &[String]) {
        let req = requires;
        let whole = json!({"name": "tag list: 200", "rule": "end-8a/200", "status": 200,
                           "requires": req});
        self.add(json!({"op": "list_tags", "repo": 0}), vec![whole]);
        self.add(
            json!({"op": "list_tags_paged", "repo": 0, "n": 1}),
            vec![
                json!({"name": "tag list paged with n=1: 200", "rule": "end-8b/n-max",
                        "label": "page#1", "status": 200, "requires": req}),
            ],
        );
    }

    /// Discovery checks, referrers: the listing of each subject (`referrers`: subject, its
    /// referrers); a registry without the API answers 404: skipped as unsupported.
    pub fn referrers(&mut self, referrers: &[(u16, Vec<u16>)]) {
        for (s, refs) in referrers {
            let ok = format!("referrers of {}: 200, an image index", m_name(*s));
            let mut sorted = refs.clone();
            sorted.sort();
            self.add(
                json!({"op": "list_referrers", "repo": 0, "subject": {"digest": s}}),
                vec![
                    json!({"name": ok, "rule": "end-12a/200", "status": 200, "unsupported": [404],
                           "headers": {"content-type-essence": OCI_INDEX}}),
                    json!({"name": format!("referrers of {}: every referrer", m_name(*s)),
                           "rule": "end-12a/missing", "requires": [ok],
                           "body": {"referrer_manifests": sorted}}),
                ],
            );
        }
    }

    /// Management checks: delete manifest `m` by digest (then 404 by digest) and blob `b`
    /// (then 404); a registry that declines deletes (400 / 405) is skipped as unsupported.
    pub fn management(
        &mut self,
        m: Option<u16>,
        b: Option<u16>,
        requires: &dyn Fn(Target) -> Vec<String>,
    ) {
        if let Some(m) = m {
            let ok = format!("delete {} by digest: 202", m_name(m));
            self.add(
                json!({"op": "delete_manifest", "repo": 0, "reference": {"digest": m}}),
                vec![json!({"name": ok, "rule": "end-9/202", "status": 202,
                            "unsupported": [400, 405], "requires": requires(Target::Manifest(m))})],
            );
            self.add(
                json!({"op": "get_manifest", "repo": 0, "reference": {"digest": m}}),
                vec![
                    json!({"name": format!("deleted {}: 404", m_name(m)), "rule": "end-3/404",
                            "status": 404, "requires": [ok]}),
                ],
            );
        }
        if let Some(b) = b {
            let ok = format!("delete {}: 202", b_name(b));
            self.add(
                json!({"op": "delete_blob", "repo": 0, "blob": b}),
                vec![json!({"name": ok, "rule": "end-10/202", "status": 202,
                            "unsupported": [400, 405], "requires": requires(Target::Blob(b))})],
            );
            self.add(
                json!({"op": "get_blob", "repo": 0, "blob": b}),
                vec![
                    json!({"name": format!("deleted {}: 404", b_name(b)), "rule": "end-2/404",
                            "status": 404, "requires": [ok]}),
                ],
            );
        }
    }
}

/// Check names by manifest or blob index.
pub type Named = Vec<(u16, String)>;

/// What a check's `requires` is asked for.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    Manifest(u16),
    Blob(u16),
}
