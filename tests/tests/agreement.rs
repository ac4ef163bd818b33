//! Agreement with the yardstick (issue 26, item 4): for each real registry ocidiff can start
//! (distribution 2.8.2 and 3.x, olareg, go-containerregistry, container-registry), the official
//! conformance suite and `ocidiff conformance` run at the same spec version (`1.1`), each on
//! fresh storage. Every leaf test the official suite fails must be accounted for by a root
//! cause in [`CAUSES`]:
//!
//! - **covered**: ocidiff reports it too (one of the listed rules or checks fails or warns in
//!   `ocidiff conformance` on that registry, or is an oracle variation there), or
//! - **explained**: ocidiff is right not to, with the sentence why, or
//! - **missed**: a check ocidiff lacks, named (README "Agreement with the official suite").
//!
//! An official failure no cause accounts for, or a covered cause ocidiff did not report, fails
//! the test. The table it prints is the README's.

use ocidiff::drivers::conformance::{builtin_workflows, run_conformance};
use ocidiff::scenario::checks::Outcome;
use ocidiff::vocab::spec_version::SpecVersion;
use ocidiff_e2e::{find_executable, run_official_suite, skip_external};
use std::collections::{BTreeMap, BTreeSet};

/// How ocidiff stands to one root cause of official failures.
#[derive(Clone, Copy)]
enum Verdict {
    /// ocidiff reports it: any of these rule ids (in a failing or warning check's rule, or in
    /// an oracle finding on it) on the same registry.
    Covered(&'static [&'static str]),
    /// ocidiff is right not to report it, and why (the spec sentence).
    Explained(&'static str),
    /// A check ocidiff lacks.
    Missed(&'static str),
}

/// A root cause: the official leaves it accounts for on which registries.
struct Cause {
    name: &'static str,
    /// Preset names; empty: any registry.
    registries: &'static [&'static str],
    /// How it shows: (a substring of the leaf's name, a substring of its failure message),
    /// any one pair (`""`: any).
    seen: &'static [(&'static str, &'static str)],
    verdict: Verdict,
}

const SHA512_NOT_REQUIRED: &str = "sha512 is not required of a registry by v1.1.1: its only \
     mention is the example \"`<alg>`: the digest algorithm (e.g. `sha256` or `sha512`)\"; \
     the suite checks sha512 by default";

const NO_REFERRERS_API: &str = "the referrers API is optional in v1.1.1: \"a registry \
     implementation that supports the referrers API MUST respond with the response header \
     `OCI-Subject`\", and \"A client querying the referrers API and receiving a `404 Not \
     Found` MUST fallback to using an image index pushed to a tag described by the referrers \
     tag schema\"";

const MISSING_LAYERS_MAY_BE_REJECTED: &str = "the suite's non-distributable image names \
     layers it never pushes, and \"A registry MAY reject a manifest uploaded to the manifest \
     endpoint with descriptors in other fields that reference a manifest or blob that does not \
     exist in the registry\"";

const CLIENT_MUST_NOT: &str = "`sha256:baddigeststring` is neither a digest nor a tag, and \
     \"the `<tag-or-digest>` MUST be either a) a digest or b) a tag\" binds the client; a \
     registry that stores it anyway answers a request clients must not send (no 5xx, no \
     wrong content under a valid reference)";

const NO_BLOB_GET_LENGTH: &str = "v1.1.1 asks for `Content-Length` only on a blob HEAD, and \
     as a SHOULD (\"A successful response SHOULD contain the size in bytes of the uploaded blob \
     in the header `Content-Length`\"); a GET answered with chunked transfer coding is valid HTTP";

const CAUSES: &[Cause] = &[
    // sha512: reported by ocidiff where a registry answers with another algorithm's digest,
    // explained where it declines sha512.
    Cause {
        name: "sha512 manifest answered with a sha256 Docker-Content-Digest",
        registries: &["ggcr", "container-registry"],
        seen: &[(
            "manifest",
            "Docker-Content-Digest header value expected \"sha512:",
        )],
        verdict: Verdict::Covered(&["end-7/digest", "end-3/digest"]),
    },
    Cause {
        name: "sha512 blob answered with a sha256 Docker-Content-Digest",
        registries: &["distribution", "distribution3"],
        seen: &[(
            "sha512",
            "Docker-Content-Digest header value expected \"sha512:",
        )],
        verdict: Verdict::Covered(&["end-2/digest-algorithm", "end-3/digest-algorithm"]),
    },
    Cause {
        name: "sha512 mount answered 201 with a Location that does not serve the blob",
        registries: &["distribution", "distribution3"],
        seen: &[(
            "sha512 blobs/mount/blob-mount",
            "failed to verify returned location",
        )],
        // The Push workflow mounts its sha512 blob too (ops 53-54).
        verdict: Verdict::Covered(&["end-11/mounted-head-200", "end-2/head-200"]),
    },
    Cause {
        name: "sha512 manifests declined",
        registries: &["distribution", "distribution3"],
        seen: &[("sha512/", "")],
        verdict: Verdict::Explained(SHA512_NOT_REQUIRED),
    },
    Cause {
        name: "sha512 declined with 400",
        registries: &["container-registry"],
        seen: &[("sha512", "received 400")],
        verdict: Verdict::Explained(SHA512_NOT_REQUIRED),
    },
    Cause {
        name: "sha512 blob accepted, then unknown by its sha512 digest",
        registries: &["ggcr"],
        seen: &[("sha512", "received 404")],
        verdict: Verdict::Covered(&["end-2/404", "end-2/head-200", "end-2/get-200"]),
    },
    // The referrers API, optional in v1.1.1.
    Cause {
        name: "no referrers API",
        registries: &[
            "distribution",
            "distribution3",
            "ggcr",
            "container-registry",
        ],
        seen: &[("/referrers", "\"Content-Type\""), ("", "\"OCI-Subject\"")],
        verdict: Verdict::Explained(NO_REFERRERS_API),
    },
    // The suite's image with non-distributable layers (which it never pushes).
    Cause {
        name: "a manifest naming non-distributable layers answered 500",
        registries: &["distribution", "distribution3"],
        seen: &[("non-distributable-layers/", "")],
        // A 500, not the 400 a rejection would be: the data kind `non-distributable`.
        verdict: Verdict::Covered(&["end-7/put-201"]),
    },
    Cause {
        name: "a manifest naming layers never pushed rejected",
        registries: &["olareg"],
        seen: &[("non-distributable-layers/", "")],
        verdict: Verdict::Explained(MISSING_LAYERS_MAY_BE_REJECTED),
    },
    // Uploads.
    Cause {
        name: "out-of-order PATCH accepted",
        registries: &["distribution", "container-registry"],
        seen: &[(
            "",
            "blob out of order chunk: unexpected status code, expected one of [416]",
        )],
        verdict: Verdict::Covered(&["end-5/out-of-order-416"]),
    },
    Cause {
        name: "unsatisfiable range answered with a Content-Length and no body",
        registries: &["distribution"],
        seen: &[("range requests/range", "unexpected EOF")],
        // A 416 announcing the whole blob's length and sending 33 bytes: every client sees the
        // body break off (http/transport).
        verdict: Verdict::Covered(&["http/transport"]),
    },
    Cause {
        name: "no Location on upload answers",
        registries: &["ggcr"],
        seen: &[("", "ocation")],
        verdict: Verdict::Covered(&["end-4b/location", "end-6/location", "end-7/location"]),
    },
    Cause {
        name: "completion Location not pullable",
        registries: &["container-registry"],
        seen: &[("", "failed to verify returned location")],
        verdict: Verdict::Missed(
            "found by `ocidiff fuzz` (end-6: a blob PUT whose Location is the upload URL); the \
             conformance workflows check that a Location is sent, not what it serves",
        ),
    },
    Cause {
        name: "no upload status",
        registries: &["ggcr"],
        seen: &[("", "blob chunked upload get request")],
        verdict: Verdict::Covered(&["end-13/204"]),
    },
    Cause {
        name: "blob DELETE answered 500",
        registries: &["ggcr"],
        seen: &[("blob-delete", "received 500")],
        // The suite deletes blobs its failed mounts never stored; so does the Content
        // Management workflow ("delete a blob that does not exist: 404").
        verdict: Verdict::Covered(&["end-10/404"]),
    },
    Cause {
        name: "500 on monolithic uploads",
        registries: &["container-registry"],
        seen: &[("", "received 500")],
        verdict: Verdict::Covered(&["end-6/put-201", "end-4b/single-post-unsupported"]),
    },
    Cause {
        name: "manifests refused once their blobs failed to upload",
        registries: &["container-registry"],
        seen: &[
            (
                "",
                "manifest put failed: unexpected status code, expected one of [201], received 400",
            ),
            (
                "",
                "unexpected status code, expected one of [200], received 404",
            ),
            ("tag-list", "missing tag"),
        ],
        verdict: Verdict::Covered(&["end-7/missing-refs-rejected", "end-7/put-201"]),
    },
    Cause {
        name: "no Content-Length on blob GET",
        registries: &["container-registry"],
        seen: &[(
            "",
            "blob get failed: header value mismatch for \"Content-Length\"",
        )],
        verdict: Verdict::Explained(NO_BLOB_GET_LENGTH),
    },
    // Manifests.
    Cause {
        name: "500 on a malformed manifest digest",
        registries: &["distribution"],
        seen: &[("invalid-digest-format/", "received 500")],
        // The Push workflow sends the suite's `sha256:baddigeststring` too (ops 57-58).
        verdict: Verdict::Covered(&[
            "manifest pushed under a malformed digest is rejected",
            "a manifest pulled by a malformed digest is not found",
        ]),
    },
    Cause {
        name: "a manifest accepted under a malformed digest",
        registries: &["ggcr", "container-registry"],
        seen: &[("invalid-digest-format/", "")],
        verdict: Verdict::Explained(CLIENT_MUST_NOT),
    },
    Cause {
        name: "a manifest accepted under a digest its bytes do not hash to",
        registries: &["ggcr", "container-registry"],
        seen: &[("bad-digest-image/", "")],
        // The Push workflow pushes one manifest's bytes under another's digest (ops 55-56).
        verdict: Verdict::Covered(&["end-7/digest", "end-3/404"]),
    },
    // Tags.
    Cause {
        name: "tags unsorted, `last` not honoured",
        registries: &["distribution"],
        seen: &[("tag-list", "returned when last set")],
        verdict: Verdict::Covered(&["end-8a/order", "end-8b/content"]),
    },
];

/// The registries: preset name, the program it needs on PATH (`None`: in-process).
const REGISTRIES: &[(&str, Option<&str>)] = &[
    ("distribution", Some("docker-registry")),
    ("distribution3", Some("distribution3")),
    ("olareg", Some("olareg")),
    ("ggcr", Some("crane")),
    ("container-registry", None),
];

/// What ocidiff's conformance run reported on `name`: the rules of failing or warning checks,
/// of the oracle findings on them and of the oracle's variations, and the names of those
/// checks.
async fn ocidiff_reports(name: &str) -> BTreeSet<String> {
    let spec = ocidiff::targets::parse_target_arg(name).unwrap().1;
    let mut workflows = builtin_workflows().unwrap();
    workflows.extend(ocidiff::drivers::data_kinds::workflows());
    let results = run_conformance(
        vec![(name.to_string(), spec)],
        &workflows,
        SpecVersion::V1_1,
    )
    .await
    .unwrap();
    let mut out = BTreeSet::new();
    for cell in results.results.iter().filter(|c| c.target == name) {
        for c in &cell.checks {
            // Failed and warned checks, and the oracle's variations (shown as info).
            let found = matches!(c.outcome, Outcome::Fail | Outcome::Warn)
                || (c.outcome == Outcome::Info && c.source == "oracle");
            if !found {
                continue;
            }
            if let Some(r) = &c.rule {
                out.insert(r.clone());
            }
            for o in &c.oracle {
                out.insert(o.split(": ").next().unwrap_or(o).to_string());
            }
            out.insert(c.name.clone());
        }
    }
    out
}

/// The official suite's failed leaves on a fresh `name`: (leaf, message).
async fn official_failures(name: &str, suite: &std::path::Path) -> Vec<(String, String)> {
    let spec = ocidiff::targets::parse_target_arg(name).unwrap().1;
    let launched = ocidiff::targets::launch(name, &spec).await.unwrap();
    let addr = launched
        .base_url
        .as_str()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let suite = suite.to_path_buf();
    let run = tokio::task::spawn_blocking(move || run_official_suite(&suite, &addr, "1.1", &[]))
        .await
        .unwrap()
        .unwrap();
    launched.shutdown().await;
    assert!(
        run.count("Pass") > 100,
        "{name}: too few official tests ran:\n{}",
        run.output
    );
    run.failed_leaves()
        .into_iter()
        .map(|(n, m)| (n.to_string(), m.to_string()))
        .collect()
}

fn cause_of(registry: &str, leaf: &str, message: &str) -> Option<&'static Cause> {
    CAUSES.iter().find(|c| {
        (c.registries.is_empty() || c.registries.contains(&registry))
            && c.seen
                .iter()
                .any(|(l, m)| leaf.contains(l) && message.contains(m))
    })
}

/// Digests and ids out of a message, so that one cause's messages read alike.
fn shape(message: &str) -> String {
    let mut out = String::new();
    let mut hex = 0;
    for ch in message.chars() {
        if ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase() {
            hex += 1;
            if hex <= 8 {
                out.push(ch);
            }
        } else {
            hex = 0;
            out.push(ch);
        }
    }
    out.chars().take(160).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_official_failure_is_covered_explained_or_listed() {
    let Some(suite) = find_executable("oci-conformance") else {
        skip_external(
            "agreement: `oci-conformance` is not installed (bash tests/tools/install-go-tools.sh)",
        );
        return;
    };
    let mut problems: Vec<String> = Vec::new();
    let mut rows: Vec<String> = Vec::new();
    for (name, program) in REGISTRIES {
        if let Some(p) = program {
            if find_executable(p).is_none() {
                skip_external(&format!("agreement: `{p}` ({name}) is not installed"));
                continue;
            }
        }
        let leaves = official_failures(name, &suite).await;
        let reports = ocidiff_reports(name).await;
        let mut hit: BTreeMap<&str, (Verdict, usize)> = BTreeMap::new();
        let mut unaccounted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (leaf, message) in &leaves {
            match cause_of(name, leaf, message) {
                Some(c) => hit.entry(c.name).or_insert((c.verdict, 0)).1 += 1,
                None => unaccounted
                    .entry(shape(message))
                    .or_default()
                    .push(leaf.clone()),
            }
        }
        for (msg, ls) in &unaccounted {
            problems.push(format!(
                "{name}: {} official failure(s) no cause accounts for: {msg:?} (e.g. {})",
                ls.len(),
                ls[0]
            ));
        }
        let (mut covered, mut explained, mut missed) = (0, 0, 0);
        for (cause, (verdict, n)) in &hit {
            match verdict {
                Verdict::Covered(rules) => {
                    covered += 1;
                    if !reports
                        .iter()
                        .any(|r| rules.iter().any(|want| r.contains(want)))
                    {
                        problems.push(format!(
                            "{name}: cause {cause:?} ({n} official failures) is covered by {rules:?}, but ocidiff reported none of them (its rules: {:?})",
                            reports.iter().filter(|r| r.contains('/')).collect::<Vec<_>>()
                        ));
                    }
                }
                Verdict::Explained(_) => explained += 1,
                Verdict::Missed(_) => missed += 1,
            }
            let why = match verdict {
                Verdict::Covered(rules) => format!("covered by {}", rules.join(" / ")),
                Verdict::Explained(why) => format!("explained: {why}"),
                Verdict::Missed(why) => format!("missed: {why}"),
            };
            println!("{name}: {cause} ({n} leaves): {why}");
        }
        rows.push(format!(
            "| {name} | {} | {covered} / {explained} / {missed} |",
            leaves.len()
        ));
    }
    println!("| registry | official failing leaves | root causes covered / explained / missed |");
    println!("|---|---:|---|");
    for r in &rows {
        println!("{r}");
    }
    assert!(
        problems.is_empty(),
        "the official suite and ocidiff disagree:\n{}",
        problems.join("\n")
    );
}
