//! `ocidiff conformance --read-only --repo R --tag T [--digest D]...`: pull and discovery checks
//! against content that is already on a registry (a mirror, a pull-through cache, a hosted
//! image), with no write to it.
//!
//! 1. **Import**: from the first target besides the reference, the manifests of the tags and
//!    digests (index children included), the referrers of each and their blobs, read whole
//!    through the executor (credentials, tokens, redirects as for any request), bounded in
//!    count and bytes.
//! 2. **Seed the oracle**: the imported bytes become literal `Content`; the reference alone
//!    gets them pushed into its case namespace (blobs, manifests by digest, the tags).
//! 3. **Check**: the same read ops go to every target, repository 0 naming the case namespace's
//!    repository on the reference and `R` itself on the others. Both oracles judge as in any
//!    run (the model knows what the setup stored; the reference is compared exchange by
//!    exchange), plus the workflow's named checks for the results page.

use crate::compare::check_case;
use crate::drivers::case::{run_id, with_reference_first, Fleet};
use crate::drivers::conformance::{cells, results, target_infos};
use crate::drivers::generated::{referrers_of, Builder};
use crate::execute::{ExecOptions, Executor};
use crate::model::is_valid_digest;
use crate::report::conformance::{ConformanceResults, WorkflowInfo};
use crate::scenario::checks::evaluate;
use crate::scenario::{Meta, Scenario};
use crate::targets::TargetSpec;
use crate::vocab::content::{algo_of, digest_matches, digest_of, Content, ALL_MANIFEST_TYPES};
use crate::vocab::exchange::{CaseOutcome, OpOutcome};
use crate::vocab::ids::DigestAlgo;
use anyhow::{bail, Context as _};
use bytes::Bytes;
use serde_json::{json, Value};

/// What to check.
#[derive(Clone, Debug)]
pub struct ReadOnlyConfig {
    /// The repository, as the registry names it.
    pub repo: String,
    /// Tags that must resolve in it.
    pub tags: Vec<String>,
    /// Manifest digests that must be in it (besides what the tags name).
    pub digests: Vec<String>,
    /// At most this many manifests are imported (children and referrers included).
    pub max_manifests: usize,
    /// Blobs larger than this are not imported (their pulls are not checked).
    pub max_blob_bytes: u64,
    /// All imported blobs together at most this many bytes.
    pub max_total_bytes: u64,
    /// The spec version targets are judged by unless they claim one.
    pub spec_version: crate::vocab::spec_version::SpecVersion,
}

impl ReadOnlyConfig {
    pub fn new(repo: &str, tags: Vec<String>, digests: Vec<String>) -> ReadOnlyConfig {
        ReadOnlyConfig {
            repo: repo.to_string(),
            tags,
            digests,
            max_manifests: 64,
            max_blob_bytes: 64 << 20,
            max_total_bytes: 256 << 20,
            spec_version: Default::default(),
        }
    }
}

/// Content read from the target: literal blobs and manifests, and what names them.
#[derive(Debug)]
pub struct Imported {
    pub content: Content,
    /// (tag, manifest index): the tags asked for, and with a complete tag list every tag.
    pub tags: Vec<(String, u16)>,
    /// The repository's whole tag list was read (at most `MAX_LISTED_TAGS`, one page): the tag
    /// list checks run.
    pub tag_list_complete: bool,
    /// Manifests named by the tags and `--digest`s (not children or referrers).
    pub roots: Vec<u16>,
    /// Manifests whose referrers listing answered 200 (subject index).
    pub listed_referrers: Vec<u16>,
    /// Blobs left out (size or total bound), as `digest (bytes)`.
    pub skipped_blobs: Vec<String>,
    /// Manifests left out (count bound), by digest.
    pub skipped_manifests: Vec<String>,
    /// Index of the blob and of the manifest that are never stored (404 checks).
    pub absent_blob: u16,
    pub absent_manifest: u16,
}

/// A repository with more tags than this has its tag list left unchecked in read-only mode.
pub const MAX_LISTED_TAGS: usize = 32;

/// The digest of fetched manifest bytes: the registry's `sha512:` one when it matches them,
/// else their sha256.
fn digest_of_bytes(digest_hint: Option<&str>, bytes: &[u8]) -> String {
    match digest_hint {
        Some(d) if algo_of(d) == DigestAlgo::Sha512 && digest_matches(d, bytes) => d.to_string(),
        _ => digest_of(DigestAlgo::Sha256, bytes),
    }
}

/// Reads the content of `cfg` from target `t` of `ex`.
pub async fn import(ex: &Executor, t: usize, cfg: &ReadOnlyConfig) -> anyhow::Result<Imported> {
    let accept = ALL_MANIFEST_TYPES.join(", ");
    let repo = &cfg.repo;
    // (digest, media type, bytes), in the order found.
    let mut manifests: Vec<(String, String, Bytes)> = Vec::new();
    let mut skipped_manifests = Vec::new();
    let mut queue: Vec<String> = Vec::new();
    let mut tags = Vec::new();
    let mut root_digests = Vec::new();
    let fetch_manifest = |reference: String| {
        let accept = accept.clone();
        async move {
            let path = format!("/v2/{repo}/manifests/{reference}");
            let f = ex.fetch(t, &path, Some(&accept), 4 << 20).await?;
            if f.status != 200 {
                bail!(
                    "GET {path} answered {} (the content must be there)",
                    f.status
                );
            }
            let media_type = f
                .headers
                .get("content-type")
                .map(|c| reference_registry::spec::media_type_essence(c).to_string())
                .filter(|c| !c.is_empty())
                .or_else(|| {
                    serde_json::from_slice::<Value>(&f.body)
                        .ok()
                        .and_then(|v| v["mediaType"].as_str().map(str::to_string))
                })
                .unwrap_or_default();
            let hint = f.headers.get("docker-content-digest").cloned();
            let digest = if reference.contains(':') {
                reference.clone()
            } else {
                digest_of_bytes(hint.as_deref(), &f.body)
            };
            anyhow::Ok((digest, media_type, f.body))
        }
    };
    // The whole tag list, when it is small: the model must know every tag to judge the list
    // (the other tags' manifests are imported too); a bigger list is not checked.
    let mut all_tags = cfg.tags.clone();
    let mut tag_list_complete = false;
    let list = ex
        .fetch(t, &format!("/v2/{repo}/tags/list"), None, 1 << 20)
        .await?;
    if list.status == 200 && !list.headers.contains_key("link") {
        let v: Value = serde_json::from_slice(&list.body).unwrap_or(Value::Null);
        let listed: Vec<String> = v["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        if listed.len() <= MAX_LISTED_TAGS {
            tag_list_complete = true;
            for l in listed {
                if !all_tags.contains(&l) && crate::model::is_valid_tag(&l) {
                    all_tags.push(l);
                }
            }
        }
    }
    for tag in &all_tags {
        let (digest, mt, bytes) = match fetch_manifest(tag.clone()).await {
            Ok(m) => m,
            // A listed tag that cannot be read (a media type not asked for, a dangling tag):
            // the model cannot know it, so the tag list is not judged; it is named instead.
            Err(e) if !cfg.tags.contains(tag) => {
                tag_list_complete = false;
                skipped_manifests.push(format!("tag {tag} ({e:#}); the tag list is not checked"));
                continue;
            }
            Err(e) => return Err(e),
        };
        if !manifests.iter().any(|m| m.0 == digest) {
            manifests.push((digest.clone(), mt, bytes));
        }
        tags.push((tag.clone(), digest.clone()));
        if cfg.tags.contains(tag) {
            root_digests.push(digest);
        }
    }
    for d in &cfg.digests {
        if !is_valid_digest(d) {
            bail!("--digest {d}: not a digest");
        }
        root_digests.push(d.clone());
        queue.push(d.clone());
    }
    // Children of every manifest and the referrers of each root, breadth first.
    let mut listed_referrers = Vec::new();
    let mut next = 0;
    let mut referrers_asked = Vec::new();
    loop {
        while let Some(d) = queue.pop() {
            if manifests.iter().any(|m| m.0 == d) {
                continue;
            }
            if manifests.len() >= cfg.max_manifests {
                skipped_manifests.push(d);
                continue;
            }
            manifests.push(fetch_manifest(d).await?);
        }
        if next >= manifests.len() {
            break;
        }
        let (digest, _, bytes) = manifests[next].clone();
        next += 1;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if let Some(children) = v["manifests"].as_array() {
            for c in children {
                if let Some(d) = c["digest"].as_str().filter(|d| is_valid_digest(d)) {
                    queue.push(d.to_string());
                }
            }
        }
        if root_digests.contains(&digest) && !referrers_asked.contains(&digest) {
            referrers_asked.push(digest.clone());
            let path = format!("/v2/{repo}/referrers/{digest}");
            if let Ok(f) = ex.fetch(t, &path, None, 4 << 20).await {
                if f.status == 200 {
                    listed_referrers.push(digest.clone());
                    let v: Value = serde_json::from_slice(&f.body).unwrap_or(Value::Null);
                    for r in v["manifests"].as_array().into_iter().flatten() {
                        if let Some(d) = r["digest"].as_str().filter(|d| is_valid_digest(d)) {
                            queue.push(d.to_string());
                        }
                    }
                }
            }
        }
    }
    // Blobs: configs and layers, within the bounds; bytes that do not match their digest are
    // left out (their pulls are then judged against nothing; say so).
    let mut blobs: Vec<(String, Bytes)> = Vec::new();
    let mut skipped_blobs = Vec::new();
    let mut total = 0u64;
    for (_, _, bytes) in &manifests {
        let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        let descs = v["config"]
            .as_object()
            .map(|_| &v["config"])
            .into_iter()
            .chain(v["layers"].as_array().into_iter().flatten());
        for desc in descs {
            let Some(d) = desc["digest"].as_str().filter(|d| is_valid_digest(d)) else {
                continue;
            };
            if blobs.iter().any(|b| b.0 == d)
                || skipped_blobs.iter().any(|s: &String| s.starts_with(d))
            {
                continue;
            }
            let size = desc["size"].as_u64().unwrap_or(0);
            if size > cfg.max_blob_bytes || total + size > cfg.max_total_bytes {
                skipped_blobs.push(format!("{d} ({size} bytes)"));
                continue;
            }
            let path = format!("/v2/{repo}/blobs/{d}");
            let f = ex
                .fetch(t, &path, None, cfg.max_blob_bytes)
                .await
                .with_context(|| format!("importing blob {d}"))?;
            if f.status != 200 {
                bail!(
                    "GET {path} answered {} (the content must be there)",
                    f.status
                );
            }
            if !digest_matches(d, &f.body) {
                skipped_blobs.push(format!("{d} (its bytes do not match the digest)"));
                continue;
            }
            total += f.body.len() as u64;
            blobs.push((d.to_string(), f.body));
        }
    }
    // Never stored: a blob and a manifest for the 404 checks.
    let absent_blob_bytes = Bytes::from(format!("ocidiff read-only {} absent blob\n", run_id()));
    let absent_blob = blobs.len() as u16;
    blobs.push((
        digest_of(DigestAlgo::Sha256, &absent_blob_bytes),
        absent_blob_bytes,
    ));
    let absent_manifest_bytes = Bytes::from(
        json!({"schemaVersion": 2, "mediaType": crate::vocab::content::OCI_MANIFEST,
               "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                          "digest": blobs[absent_blob as usize].0, "size": 0},
               "layers": [], "annotations": {"ocidiff": run_id()}})
        .to_string(),
    );
    let absent_manifest = manifests.len() as u16;
    manifests.push((
        digest_of(DigestAlgo::Sha256, &absent_manifest_bytes),
        crate::vocab::content::OCI_MANIFEST.to_string(),
        absent_manifest_bytes,
    ));
    let index_of = |d: &str, ms: &[(String, String, Bytes)]| {
        ms.iter().position(|m| m.0 == d).map(|i| i as u16)
    };
    let tags: Vec<(String, u16)> = tags
        .into_iter()
        .filter_map(|(t, d)| index_of(&d, &manifests).map(|i| (t, i)))
        .collect();
    let mut roots: Vec<u16> = root_digests
        .iter()
        .filter_map(|d| index_of(d, &manifests))
        .collect();
    roots.dedup();
    let listed_referrers = listed_referrers
        .iter()
        .filter_map(|d| index_of(d, &manifests))
        .collect();
    let content = Content::from_literal(blobs, manifests).context("importing the content")?;
    Ok(Imported {
        content,
        tags,
        tag_list_complete,
        roots,
        listed_referrers,
        skipped_blobs,
        skipped_manifests,
        absent_blob,
        absent_manifest,
    })
}

/// The read-only workflow over `imp`: setup ops (for the reference only: the first `setup`
/// ops), then the pull and discovery checks' ops.
pub fn workflow(imp: &Imported) -> (Scenario, usize) {
    let c = &imp.content;
    let mut b = Builder::default();
    b.push(
        c,
        &imp.tags,
        &[imp.absent_blob],
        &[imp.absent_manifest],
        &[],
        false,
    );
    let setup = b.ops.len();
    let manifests: Vec<u16> = (0..c.manifest_count() as u16)
        .filter(|m| *m != imp.absent_manifest)
        .collect();
    let blobs: Vec<u16> = (0..c.blob_count() as u16)
        .filter(|x| *x != imp.absent_blob)
        .collect();
    b.pull(
        c,
        &imp.tags,
        &manifests,
        &blobs,
        Some((imp.absent_manifest, imp.absent_blob)),
        &|_| Vec::new(),
    );
    if imp.tag_list_complete {
        b.tag_lists(&[]);
    }
    let referrers: Vec<(u16, Vec<u16>)> = imp
        .listed_referrers
        .iter()
        .map(|s| (*s, referrers_of(c, &manifests, *s)))
        .collect();
    b.referrers(&referrers);
    let sc = Scenario {
        meta: Meta {
            title: "Read-only".into(),
            description: "Pull and discovery checks on content already in the registry: manifests by tag and digest (GET, HEAD), blobs, unknown content (404), the tag list, referrers; nothing is written. The reference registry holds the same bytes and answers the same requests.".into(),
            spec: vec!["All registries conforming to this specification MUST support, at a minimum, all APIs in the **Pull** category.".into()],
            ..Meta::default()
        },
        ops: b.ops,
        expect: b.expect,
        ..Scenario::default()
    };
    (sc, setup)
}

/// The read-only conformance run (the reference is added as the oracle when missing).
pub async fn run_read_only(
    targets: Vec<(String, TargetSpec)>,
    cfg: &ReadOnlyConfig,
) -> anyhow::Result<(ConformanceResults, Imported)> {
    if !reference_registry::spec::is_valid_name(&cfg.repo) {
        bail!("--repo {:?}: not a repository name", cfg.repo);
    }
    for t in &cfg.tags {
        if !crate::model::is_valid_tag(t) {
            bail!("--tag {t:?}: not a tag");
        }
    }
    if cfg.tags.is_empty() && cfg.digests.is_empty() {
        bail!("--read-only needs --tag or --digest: what to check");
    }
    let targets = with_reference_first(targets)?;
    if targets.len() < 2 {
        bail!("--read-only needs a target holding the content (--target NAME=URL)");
    }
    let fleet = Fleet::launch(&targets, cfg.spec_version).await?;
    let result = read_only_with(&fleet, cfg).await;
    fleet.shutdown().await;
    result
}

async fn read_only_with(
    fleet: &Fleet,
    cfg: &ReadOnlyConfig,
) -> anyhow::Result<(ConformanceResults, Imported)> {
    let source = &fleet.launched[1].name;
    let imp = import(&fleet.executor, 1, cfg)
        .await
        .with_context(|| format!("reading {}:{} from {source}", cfg.repo, cfg.tags.join(",")))?;
    let (sc, setup) = workflow(&imp);
    let ns = format!("ocidiff{}ro", run_id());
    // The reference alone gets the content; every target is then asked the same.
    let seed = Scenario {
        ops: sc.ops[..setup].to_vec(),
        ..Scenario::default()
    };
    let ref_only = fleet.executor.subset(&[0]);
    let seeded = crate::drivers::case::execute_scenario(&ref_only, &seed, &imp.content, &ns).await;
    let readers = Executor::new(
        fleet
            .launched
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut e = t.exec_target();
                if i > 0 {
                    e.options.repo_names.insert(0, cfg.repo.clone());
                }
                e
            })
            .collect(),
        ExecOptions {
            spec_version: cfg.spec_version,
            ..ExecOptions::default()
        },
    )?;
    let reads = Scenario {
        ops: sc.ops[setup..].to_vec(),
        ..Scenario::default()
    };
    let read = crate::drivers::case::execute_scenario(&readers, &reads, &imp.content, &ns).await;
    let nt = fleet.launched.len();
    let mut ops: Vec<OpOutcome> = seeded
        .ops
        .into_iter()
        .map(|o| {
            let mut per_target = o.per_target;
            per_target.resize(nt, Vec::new());
            OpOutcome { per_target }
        })
        .collect();
    ops.extend(read.ops);
    let outcome = CaseOutcome {
        targets: fleet.names(),
        ops,
        versions: fleet.executor.versions(),
    };
    let divergences = check_case(&sc.sequence(), &imp.content, &outcome);
    let checks = evaluate(&sc, &imp.content, &outcome, &ns, &divergences);
    let description = format!(
        "{} Repository {}, tags {:?}, {} manifests and {} blobs imported from {source}.",
        sc.meta.description,
        cfg.repo,
        cfg.tags,
        imp.content.manifest_count() - 1,
        imp.content.blob_count() - 1
    );
    let workflows = vec![WorkflowInfo {
        id: "read-only".into(),
        title: sc.meta.title.clone(),
        description,
        source: format!("read-only:{}", cfg.repo),
    }];
    Ok((
        results(
            target_infos(fleet),
            workflows,
            cells(&outcome, "read-only", checks),
            cfg.spec_version,
        ),
        imp,
    ))
}
