//! The conformance workflows crossed with data kinds, as the official suite crosses its APIs
//! with data sets: for each kind of content (an image, an index, a nested index, a sparse
//! index, an artifact, an artifact index, a subject with referrers, a missing subject, a
//! `data` field, custom fields, no layers, an empty blob, sha512, a non-distributable layer, a
//! large manifest, Docker schema 2, a Docker manifest list, several tags), a workflow that
//! pushes it (push checks),
//! pulls every manifest and blob of it by tag and digest (pull checks), lists its tags and
//! referrers (discovery checks) and deletes a manifest and a blob (management checks). The
//! checks come from `generated::Builder`; `ocidiff conformance` runs these beside the four
//! hand-written workflows.

use super::conformance::Workflow;
use super::generated::{referrers_of, Builder, Target};
use crate::scenario::{Meta, Scenario};
use crate::vocab::content::Content;
use crate::vocab::spec::ContentSpec;
use crate::vocab::ManifestId;
use serde_json::{json, Value};

/// One data kind: its content (the last blob and manifest are never pushed: the 404 checks),
/// its tags, and which manifests may be declined or are left out on purpose.
struct Kind {
    id: &'static str,
    what: &'static str,
    blobs: Value,
    manifests: Value,
    /// (tag, manifest).
    tags: &'static [(&'static str, u16)],
    /// Manifests not pushed (sparse content, a missing subject).
    unpushed: &'static [u16],
    /// Manifests a registry MAY reject (missing references): 400 is "unsupported".
    declinable: &'static [u16],
}

fn blob(size: u32, seed: u64) -> Value {
    json!({"size": size, "seed": seed})
}

fn kinds() -> Vec<Kind> {
    let base = || json!([blob(64, 1), blob(1000, 2), blob(2000, 3)]);
    let img = |layers: Value| json!({"kind": "image", "config": 0, "layers": layers});
    let many: Vec<Value> = (0..48).map(|i| blob(16 + i, 100 + u64::from(i))).collect();
    vec![
        Kind {
            id: "image",
            what: "an image manifest: config and two layers",
            blobs: base(),
            manifests: json!([img(json!([1, 2]))]),
            tags: &[("v1", 0)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "index",
            what: "an image index of two images",
            blobs: base(),
            manifests: json!([img(json!([1])), img(json!([2])),
                              {"kind": "index", "manifests": [0, 1]}]),
            tags: &[("v1", 2)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "nested-index",
            what: "an index of an index of an image",
            blobs: base(),
            manifests: json!([img(json!([1, 2])), {"kind": "index", "manifests": [0]},
                              {"kind": "index", "manifests": [1]}]),
            tags: &[("v1", 2)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "sparse-index",
            what: "an index whose first child was never pushed (a registry MAY reject it)",
            blobs: base(),
            manifests: json!([img(json!([1])), img(json!([2])),
                              {"kind": "index", "manifests": [0, 1]}]),
            tags: &[("v1", 2)],
            unpushed: &[0],
            declinable: &[2],
        },
        Kind {
            id: "artifact",
            what: "an artifact manifest: artifactType, the empty config",
            blobs: json!([blob(2, 7), blob(500, 8)]),
            manifests: json!([{"kind": "image", "config": 0, "layers": [1],
                               "config_media_type": "application/vnd.oci.empty.v1+json",
                               "artifact_type": "application/vnd.example.sbom"}]),
            tags: &[("v1", 0)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "artifact-index",
            what: "an index with an artifactType",
            blobs: base(),
            manifests: json!([img(json!([1])),
                              {"kind": "index", "manifests": [0],
                               "artifact_type": "application/vnd.example.bundle"}]),
            tags: &[("v1", 1)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "subject",
            what: "an image and two referrers (an image and an artifact) with it as subject",
            blobs: base(),
            manifests: json!([img(json!([1])),
                              {"kind": "image", "config": 0, "layers": [2], "subject": 0},
                              {"kind": "image", "config": 0, "layers": [1], "subject": 0,
                               "artifact_type": "application/vnd.example.sig"}]),
            tags: &[("v1", 0)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "missing-subject",
            what: "a referrer pushed while its subject is not in the repository",
            blobs: base(),
            manifests: json!([img(json!([1])),
                              {"kind": "image", "config": 0, "layers": [2], "subject": 0,
                               "artifact_type": "application/vnd.example.sig"}]),
            tags: &[("v1", 1)],
            unpushed: &[0],
            declinable: &[],
        },
        Kind {
            id: "data-field",
            what: "a layer descriptor with its bytes inlined in `data`",
            blobs: base(),
            manifests: json!([{"kind": "image", "config": 0, "layers": [1], "data_field": true}]),
            tags: &[("v1", 0)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "custom-fields",
            what: "unknown top-level fields, stored and returned verbatim",
            blobs: base(),
            manifests: json!([{"kind": "image", "config": 0, "layers": [1], "custom_fields": true}]),
            tags: &[("v1", 0)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "no-layers",
            what: "an image manifest without layers",
            blobs: base(),
            manifests: json!([img(json!([]))]),
            tags: &[("v1", 0)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "empty-blob",
            what: "a zero-byte layer",
            blobs: json!([blob(64, 1), blob(0, 2)]),
            manifests: json!([img(json!([1]))]),
            tags: &[("v1", 0)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "sha512",
            what: "blobs and a manifest named by sha512 digests (a registry MAY decline sha512)",
            blobs: json!([{"size": 64, "seed": 1, "algo": "sha512"},
                          {"size": 1000, "seed": 2, "algo": "sha512"}]),
            manifests: json!([{"kind": "image", "config": 0, "layers": [1], "algo": "sha512"}]),
            tags: &[("v1", 0)],
            unpushed: &[],
            declinable: &[0],
        },
        Kind {
            id: "non-distributable",
            what: "an image whose last layer is non-distributable (`urls` outside the registry, \
                   never pushed: a registry MAY reject the manifest)",
            blobs: base(),
            manifests: json!([{"kind": "image", "config": 0, "layers": [1, 2],
                               "nondistributable": true}]),
            tags: &[("v1", 0)],
            unpushed: &[],
            declinable: &[0],
        },
        Kind {
            id: "large-manifest",
            what: "an image manifest of 47 layers",
            blobs: Value::Array(many),
            manifests: json!([img(Value::Array((1..48).map(|i| json!(i)).collect()))]),
            tags: &[("v1", 0)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "docker-image",
            what: "a Docker schema 2 image manifest",
            blobs: base(),
            manifests: json!([{"kind": "image", "flavor": "docker", "config": 0, "layers": [1, 2]}]),
            tags: &[("v1", 0)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "docker-list",
            what: "a Docker manifest list of two Docker images",
            blobs: base(),
            manifests: json!([{"kind": "image", "flavor": "docker", "config": 0, "layers": [1]},
                              {"kind": "image", "flavor": "docker", "config": 0, "layers": [2]},
                              {"kind": "index", "flavor": "docker", "manifests": [0, 1]}]),
            tags: &[("v1", 2)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "referrers-tag-schema",
            what: "a referrer and the image index a client without the referrers API pushes for \
                   it under the referrers tag schema (`<alg>-<hex>` of the subject)",
            blobs: base(),
            manifests: json!([img(json!([1])),
                              {"kind": "image", "config": 0, "layers": [2], "subject": 0,
                               "artifact_type": "application/vnd.example.sig"},
                              {"kind": "index", "manifests": [1]}]),
            tags: &[("v1", 0), (REFERRERS_TAG_OF_0, 2)],
            unpushed: &[],
            declinable: &[],
        },
        Kind {
            id: "tags",
            what: "one manifest under three tags",
            blobs: base(),
            manifests: json!([img(json!([1, 2]))]),
            tags: &[("v1", 0), ("v1.0", 0), ("latest", 0)],
            unpushed: &[],
            declinable: &[],
        },
    ]
}

/// Stands for the referrers tag schema's tag of manifest 0 (known once the content renders).
const REFERRERS_TAG_OF_0: &str = "@referrers-tag-of-0";

/// The spec's referrers tag of `digest`: the algorithm truncated to 32 characters, `-`, the
/// encoded part truncated to 64, characters a tag may not hold replaced with `-`.
pub fn referrers_tag(digest: &str) -> String {
    let (alg, enc) = digest.split_once(':').unwrap_or((digest, ""));
    let t: String = format!(
        "{}-{}",
        alg.chars().take(32).collect::<String>(),
        enc.chars().take(64).collect::<String>()
    );
    t.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The workflow of one kind.
fn workflow(k: &Kind) -> Workflow {
    let mut blobs = k.blobs.as_array().cloned().unwrap_or_default();
    let mut manifests = k.manifests.as_array().cloned().unwrap_or_default();
    // Never pushed: a blob and a manifest for the 404 checks.
    let absent_blob = blobs.len() as u16;
    blobs.push(blob(32, 0xAB5E_u64));
    let absent_manifest = manifests.len() as u16;
    manifests.push(json!({"kind": "image", "config": absent_blob, "layers": []}));
    let spec: ContentSpec = serde_json::from_value(json!({"blobs": blobs, "manifests": manifests}))
        .unwrap_or_else(|e| panic!("data kind {}: {e}", k.id));
    let content = Content::render(&spec).unwrap_or_else(|e| panic!("data kind {}: {e}", k.id));
    let tags: Vec<(String, u16)> = k
        .tags
        .iter()
        .map(|(t, m)| match *t {
            REFERRERS_TAG_OF_0 => (
                referrers_tag(content.manifest_digest(ManifestId(0)).unwrap_or_default()),
                *m,
            ),
            t => (t.to_string(), *m),
        })
        .collect();
    let mut unpushed = k.unpushed.to_vec();
    unpushed.push(absent_manifest);
    // Blobs only unpushed manifests use are not pushed either (sparse content).
    let used = |b: u16| {
        (0..content.manifest_count() as u16)
            .filter(|m| !unpushed.contains(m))
            .any(|m| {
                content
                    .manifest_blobs(ManifestId(m))
                    .iter()
                    .any(|x| x.0 == b)
            })
    };
    // Nor are non-distributable layers (clients do not push them).
    let foreign: Vec<u16> = spec
        .manifests
        .iter()
        .filter_map(|m| match m {
            crate::vocab::spec::ManifestSpec::Image {
                nondistributable: true,
                layers,
                ..
            } => layers.last().map(|l| l.0),
            _ => None,
        })
        .collect();
    let skip_blobs: Vec<u16> = (0..content.blob_count() as u16)
        .filter(|b| !used(*b) || foreign.contains(b))
        .collect();

    let mut b = Builder::default();
    let pushed = b.push(&content, &tags, &skip_blobs, &unpushed, k.declinable, true);
    let requires = |t: Target| -> Vec<String> {
        let found = match t {
            Target::Manifest(m) => pushed.manifests.iter().find(|(x, _)| *x == m),
            Target::Blob(x) => pushed.blobs.iter().find(|(y, _)| *y == x),
        };
        found.map(|(_, n)| vec![n.clone()]).unwrap_or_default()
    };
    let manifest_ids: Vec<u16> = pushed.manifests.iter().map(|(m, _)| *m).collect();
    let blob_ids: Vec<u16> = pushed.blobs.iter().map(|(x, _)| *x).collect();
    // Tags of declinable manifests pull only if their push went through.
    b.pull(
        &content,
        &tags,
        &manifest_ids,
        &blob_ids,
        Some((absent_manifest, absent_blob)),
        &requires,
    );
    b.tag_lists(&pushed.tags);
    let referrers: Vec<(u16, Vec<u16>)> = manifest_ids
        .iter()
        .map(|s| (*s, referrers_of(&content, &manifest_ids, *s)))
        .filter(|(_, refs)| !refs.is_empty())
        .collect();
    b.referrers(&referrers);
    // Delete the last manifest pushed (the root), then a blob only it references: a registry
    // may keep blobs that a stored manifest still needs.
    let deleted = manifest_ids.last().copied();
    let orphan = deleted.and_then(|d| {
        blob_ids.iter().rev().copied().find(|x| {
            let users: Vec<u16> = manifest_ids
                .iter()
                .copied()
                .filter(|m| {
                    content
                        .manifest_blobs(ManifestId(*m))
                        .iter()
                        .any(|y| y.0 == *x)
                })
                .collect();
            users == [d]
        })
    });
    b.management(deleted, orphan, &requires);

    let id = format!("data-{}", k.id);
    Workflow {
        source: format!("builtin:{id}"),
        scenario: Scenario {
            meta: Meta {
                title: format!("Data: {}", k.id),
                description: format!("Push, pull, discovery and management of {}.", k.what),
                ..Meta::default()
            },
            content: spec,
            ops: b.ops,
            expect: b.expect,
            ..Scenario::default()
        },
        id,
    }
}

/// Every data kind's workflow.
pub fn workflows() -> Vec<Workflow> {
    kinds().iter().map(workflow).collect()
}

/// The API group a check belongs to (by its rule's endpoint, else its own).
fn api_of(e: &crate::scenario::Expect) -> &'static str {
    let endpoint = e
        .rule
        .as_deref()
        .map(|r| crate::compare::rule(r).endpoint.to_string())
        .or_else(|| e.endpoint.clone())
        .unwrap_or_default();
    match endpoint.as_str() {
        "end-1" => "api",
        "end-2" | "end-3" => "pull",
        "end-8a" | "end-8b" | "end-12a" | "end-12b" | "catalog" => "discovery",
        "end-9" | "end-10" => "management",
        "any" => "errors",
        e if e.starts_with("end-") => "push",
        _ => "other",
    }
}

/// The columns of [`coverage_table`].
pub const APIS: [&str; 6] = ["api", "push", "pull", "discovery", "management", "errors"];

/// Named checks per workflow and API group, as a Markdown table with totals (README).
pub fn coverage_table(workflows: &[Workflow]) -> String {
    let mut out = format!(
        "| workflow | {} | total |\n|---|{}---:|\n",
        APIS.join(" | "),
        "---:|".repeat(APIS.len())
    );
    let mut totals = [0usize; APIS.len()];
    for w in workflows {
        let mut row = [0usize; APIS.len()];
        for e in &w.scenario.expect {
            if let Some(i) = APIS.iter().position(|a| *a == api_of(e)) {
                row[i] += 1;
            }
        }
        for (t, r) in totals.iter_mut().zip(row) {
            *t += r;
        }
        let cells: Vec<String> = row.iter().map(|n| n.to_string()).collect();
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            w.id,
            cells.join(" | "),
            row.iter().sum::<usize>()
        ));
    }
    let cells: Vec<String> = totals.iter().map(|n| format!("**{n}**")).collect();
    out.push_str(&format!(
        "| **all** | {} | **{}** |\n",
        cells.join(" | "),
        totals.iter().sum::<usize>()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrers_tags_follow_the_spec_examples() {
        let a = "a".repeat(64);
        assert_eq!(referrers_tag(&format!("sha256:{a}")), format!("sha256-{a}"));
        let b = "a".repeat(128);
        assert_eq!(
            referrers_tag(&format!("sha512:{b}")),
            format!("sha512-{}", "a".repeat(64))
        );
        assert_eq!(
            referrers_tag("test+algorithm+using+algorithm+separators+and+lots+of+characters+to+excercise+overall+truncation:alsoSome=InTheEncodedSectionToShowHyphenReplacementAndLotsAndLotsOfCharactersToExcerciseEncodedTruncation"),
            "test-algorithm-using-algorithm-s-alsoSome-InTheEncodedSectionToShowHyphenReplacementAndLotsAndLot"
        );
    }
}
