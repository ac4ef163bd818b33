//! Writing findings: `findings.json` (a JSON array, rewritten atomically after every new finding),
//! `findings/<id>/` with `scenario.toml` (replayable with `ocidiff replay`), `repro.sh` (standalone
//! bash + curl) and `report.md`; plus the terminal progress bar and the end-of-run summary.

use crate::content::{digest_of, Content, ALL_MANIFEST_TYPES, OCI_MANIFEST};
use crate::model::{
    BadNameEndpoint, ContentTypeChoice, DigestAlgo, DigestChoice, Op, PushMethod, Reference,
};
use crate::oracle::Class;
use crate::scenario::{ExpectedDivergence, Meta, Scenario};
use crate::shrink::Finding;
use anyhow::Context as _;
use base64::Engine as _;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Bodies up to this size are embedded (base64) in `repro.sh`; larger ones go to a sidecar file.
const EMBED_LIMIT: usize = 64 << 10;

/// Writes findings as they are found.
pub struct FindingsWriter {
    out: PathBuf,
    entries: Vec<serde_json::Value>,
    target_urls: BTreeMap<String, String>,
}

impl FindingsWriter {
    /// Creates `out_dir`, `out_dir/findings/` and an empty `findings.json`.
    pub fn new(out_dir: impl AsRef<Path>) -> anyhow::Result<FindingsWriter> {
        let out = out_dir.as_ref().to_path_buf();
        std::fs::create_dir_all(out.join("findings"))
            .with_context(|| format!("creating {}", out.join("findings").display()))?;
        let w = FindingsWriter {
            out,
            entries: Vec::new(),
            target_urls: BTreeMap::new(),
        };
        w.write_json()?;
        Ok(w)
    }

    /// Target URLs used as the default `REGISTRY` of each reproducer (credentials stripped).
    pub fn with_target_urls(mut self, urls: BTreeMap<String, String>) -> FindingsWriter {
        self.target_urls = urls;
        self
    }

    pub fn json_path(&self) -> PathBuf {
        self.out.join("findings.json")
    }

    pub fn out_dir(&self) -> &Path {
        &self.out
    }

    /// Writes `findings/<id>/` and rewrites `findings.json`. Returns the finding's directory.
    pub fn add(&mut self, f: &Finding) -> anyhow::Result<PathBuf> {
        let rel = PathBuf::from("findings").join(&f.id);
        let dir = self.out.join(&rel);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let d = &f.divergence;

        let sc = Scenario {
            meta: Meta {
                title: format!("{} {} on {}: {}", d.class, d.rule, d.target, d.endpoint),
                description: d.summary.clone(),
                spec: vec![d.spec.clone()],
                seed: Some(f.case_seed),
                targets: vec![d.target.clone()],
            },
            content: f.ops.content.clone(),
            ops: f.ops.ops.clone(),
            concurrent: Vec::new(),
            expect: Vec::new(),
            divergence: Some(ExpectedDivergence {
                target: d.target.clone(),
                op_index: d.op_index,
                endpoint: d.endpoint.clone(),
                field: d.field.clone(),
                class: d.class.to_string(),
                rule: d.rule.clone(),
                summary: d.summary.clone(),
            }),
        };
        crate::scenario::write(&sc, dir.join("scenario.toml"))?;

        let url = self
            .target_urls
            .get(&d.target)
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:5000".to_string());
        let script = match Content::render(&f.ops.content) {
            Ok(content) => render_repro_sh(f, &content, &url, &dir)?,
            Err(e) => {
                format!("#!/usr/bin/env bash\necho 'cannot render content: {e}' >&2\nexit 2\n")
            }
        };
        write_atomic(&dir.join("repro.sh"), script.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(
                dir.join("repro.sh"),
                std::fs::Permissions::from_mode(0o755),
            );
        }
        write_atomic(&dir.join("report.md"), render_report_md(f).as_bytes())?;

        let entry = serde_json::json!({
            "id": f.id,
            "class": d.class,
            "target": d.target,
            "endpoint": d.endpoint,
            "field": d.field,
            "rule": d.rule,
            "spec": d.spec,
            "summary": d.summary,
            "expected": d.expected,
            "actual": d.actual,
            "reference": d.reference,
            "op_index": d.op_index,
            "label": d.label,
            "ops": f.ops,
            "original_ops_len": f.original_ops_len,
            "minimal_ops_len": f.ops.ops.len(),
            "confirmed": f.confirmed,
            "shrink_runs": f.shrink_runs,
            "reproducer": rel.join("scenario.toml").to_string_lossy(),
            "repro_sh": rel.join("repro.sh").to_string_lossy(),
            "report": rel.join("report.md").to_string_lossy(),
            "seed": f.seed,
            "case_seed": f.case_seed,
            "first_seen_case": f.first_seen_case,
        });
        self.entries.retain(|e| e["id"] != entry["id"]);
        self.entries.push(entry);
        self.write_json()?;
        Ok(dir)
    }

    fn write_json(&self) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(&self.entries)?;
        write_atomic(&self.json_path(), text.as_bytes())
    }
}

/// Writes a file via a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("temp file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// repro.sh
// ------------------------------------------------------------------------------------------

fn shq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "-._~:@!$&'()*+,;=".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn query(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    format!("?{}", s.finish())
}

/// The digest the executor sends for a `DigestChoice` (mirrors `exec`).
fn chosen_digest(choice: DigestChoice, algo: DigestAlgo, bytes: &[u8]) -> String {
    match choice {
        DigestChoice::Correct => digest_of(algo, bytes),
        DigestChoice::Wrong => {
            let mut other = bytes.to_vec();
            other.extend_from_slice(b"\0ocidiff-wrong");
            digest_of(algo, &other)
        }
        DigestChoice::Malformed => match algo {
            DigestAlgo::Sha256 => "sha256:NOT-A-HEX-DIGEST".to_string(),
            DigestAlgo::Sha512 => "sha512:xyz".to_string(),
        },
    }
}

fn reference_string(r: &Reference, content: &Content) -> String {
    crate::state::reference_string(r, content).unwrap_or_else(|| "sha256:unknown-manifest".into())
}

const SCRIPT_HEAD: &str = r#"#!/usr/bin/env bash
# ocidiff reproducer (standalone: bash + curl + base64).
#   REGISTRY=http://host:port ./repro.sh
# Credentials (HTTP basic) come from REGISTRY_USER / REGISTRY_PASS; nothing secret is stored here.
set -u
REGISTRY="${REGISTRY:-__DEFAULT_URL__}"
REGISTRY="${REGISTRY%/}"
NS="${NS:-ocidiffrepro$(date +%s)$$}"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
AUTH=()
if [ -n "${REGISTRY_USER:-}" ]; then AUTH=(-u "${REGISTRY_USER}:${REGISTRY_PASS:-}"); fi
STATUS=""; LOC=""; LINK=""

# req LABEL METHOD URL [curl args...]: prints the response head, sets STATUS, LOC (absolute) and LINK.
req() {
  local label="$1" method="$2" url="$3"; shift 3
  case "$url" in http://*|https://*) ;; *) url="$REGISTRY$url" ;; esac
  local head="$WORK/head" body="$WORK/body"
  local -a m=(-X "$method")
  if [ "$method" = HEAD ]; then m=(-I); fi
  curl -sS "${AUTH[@]}" "${m[@]}" -D "$head" -o "$body" --max-time 30 "$@" "$url" || true
  STATUS="$(head -n1 "$head" 2>/dev/null | awk '{print $2}')"
  LOC="$(grep -i '^location:' "$head" 2>/dev/null | head -n1 | cut -d' ' -f2- | tr -d '\r')"
  LINK="$(grep -i '^link:' "$head" 2>/dev/null | head -n1 | sed -e 's/^[^<]*<//' -e 's/>.*$//' | tr -d '\r')"
  case "$LOC" in ""|http://*|https://*) ;; /*) LOC="$REGISTRY$LOC" ;; *) LOC="$REGISTRY/$LOC" ;; esac
  case "$LINK" in ""|http://*|https://*) ;; /*) LINK="$REGISTRY$LINK" ;; esac
  echo "=== [$label] $method $url -> ${STATUS:-no response}"
  if [ "${SHOW:-0}" = 1 ] || [ "$label" = "$DIVERGING" ]; then
    echo "--- response headers"; cat "$head" 2>/dev/null
    echo "--- response body (first 2000 bytes)"; head -c 2000 "$body" 2>/dev/null; echo
  fi
}

# addq URL PAIR: appends a query pair to a URL that may already have a query.
addq() { case "$1" in *\?*) echo "$1&$2" ;; *) echo "$1?$2" ;; esac; }

# slice FILE OFFSET LEN OUT
slice() { tail -c +"$(( $2 + 1 ))" "$1" | head -c "$3" > "$4"; }
"#;

/// The URL without user / password (they come from `REGISTRY_USER` / `REGISTRY_PASS`).
fn strip_credentials(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.as_str().trim_end_matches('/').to_string()
        }
        Err(_) => crate::target::redact(u),
    }
}

/// Renders the standalone reproducer; large bodies are written next to it in `dir`.
pub fn render_repro_sh(
    f: &Finding,
    content: &Content,
    default_url: &str,
    dir: &Path,
) -> anyhow::Result<String> {
    let seq = &f.ops;
    let d = &f.divergence;
    let mut s = SCRIPT_HEAD.replace("__DEFAULT_URL__", &strip_credentials(default_url));
    let _ = writeln!(
        s,
        "# Finding {}: {} {} on target {:?} ({} {}), op #{} exchange {:?}.\n# {}\n# Spec: {}",
        f.id,
        d.class,
        d.rule,
        d.target,
        d.endpoint,
        d.field,
        d.op_index,
        d.label,
        d.summary.replace('\n', " "),
        d.spec.replace('\n', " ")
    );
    let _ = writeln!(
        s,
        "DIVERGING={}",
        shq(&format!("op{}:{}", d.op_index, d.label))
    );
    // Bodies.
    let body_file = |name: String, bytes: &[u8], s: &mut String| -> anyhow::Result<String> {
        if bytes.len() <= EMBED_LIMIT {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            let _ = writeln!(s, "printf '%s' '{b64}' | base64 -d > \"$WORK/{name}\"");
            Ok(format!("$WORK/{name}"))
        } else {
            write_atomic(&dir.join(&name), bytes)?;
            Ok(format!("$HERE/{name}"))
        }
    };
    let mut blob_files = BTreeMap::new();
    for i in 0..content.blob_count() {
        let id = crate::model::BlobId(i as u16);
        if let Some(b) = content.blob(id) {
            blob_files.insert(i, body_file(format!("blob{i}.bin"), b, &mut s)?);
        }
    }
    let mut manifest_files = BTreeMap::new();
    for i in 0..content.manifest_count() {
        let id = crate::model::ManifestId(i as u16);
        if let Some(b) = content.manifest(id) {
            manifest_files.insert(i, body_file(format!("manifest{i}.json"), b, &mut s)?);
        }
    }
    let accept = ALL_MANIFEST_TYPES.join(", ");
    let repo = |r: crate::model::Repo| format!("/v2/$NS/r{}", r.0);
    let octet = "-H 'Content-Type: application/octet-stream'";
    for (i, op) in seq.ops.iter().enumerate() {
        let _ = writeln!(
            s,
            "\n# op {i}: {}",
            serde_json::to_string(op).unwrap_or_default()
        );
        let l = |x: &str| shq(&format!("op{i}:{x}"));
        match op {
            Op::CheckApi => {
                let _ = writeln!(s, "req {} GET /v2/", l("get"));
            }
            Op::PushBlob {
                repo: r,
                blob,
                method,
                digest,
            } => {
                let (Some(bytes), Some(file)) =
                    (content.blob(*blob), blob_files.get(&(blob.0 as usize)))
                else {
                    continue;
                };
                let algo = content.blob_algo(*blob).unwrap_or_default();
                let dg = chosen_digest(*digest, algo, bytes);
                let up = format!("{}/blobs/uploads/", repo(*r));
                match method {
                    PushMethod::SinglePost => {
                        let _ = writeln!(
                            s,
                            "req {} POST \"{up}{}\" {octet} --data-binary @\"{file}\"",
                            l("post"),
                            query(&[("digest", &dg)])
                        );
                        let _ = writeln!(
                            s,
                            "if [ \"$STATUS\" = 202 ]; then req {} PUT \"$(addq \"$LOC\" {})\" {octet} --data-binary @\"{file}\"; fi",
                            l("put-fallback"),
                            shq(&format!("digest={dg}"))
                        );
                    }
                    _ => {
                        let post_q = match (method, algo) {
                            (PushMethod::Monolithic, _) | (_, DigestAlgo::Sha256) => String::new(),
                            _ => query(&[("digest-algorithm", "sha512")]),
                        };
                        let _ = writeln!(s, "req {} POST \"{up}{post_q}\"", l("post"));
                        let _ = writeln!(s, "if [ \"$STATUS\" = 202 ]; then");
                        let put_q = shq(&format!("digest={dg}"));
                        match method {
                            PushMethod::Monolithic => {
                                let _ = writeln!(s, "  req {} PUT \"$(addq \"$LOC\" {put_q})\" {octet} --data-binary @\"{file}\"", l("put"));
                            }
                            PushMethod::Streamed => {
                                let _ = writeln!(
                                    s,
                                    "  req {} PATCH \"$LOC\" {octet} --data-binary @\"{file}\"",
                                    l("patch#1")
                                );
                                let _ = writeln!(s, "  [ \"$STATUS\" = 202 ] && req {} PUT \"$(addq \"$LOC\" {put_q})\" -H 'Content-Length: 0'", l("put"));
                            }
                            PushMethod::Chunked {
                                chunks,
                                last_in_put,
                            } => {
                                let pieces = crate::exec::split_chunks(bytes.len(), *chunks);
                                let patched = if *last_in_put && !pieces.is_empty() {
                                    pieces.len() - 1
                                } else {
                                    pieces.len()
                                };
                                let _ = writeln!(s, "  ok=1");
                                for (k, (a, b)) in pieces[..patched].iter().enumerate() {
                                    let _ = writeln!(
                                        s,
                                        "  if [ $ok = 1 ]; then slice \"{file}\" {a} {} \"$WORK/chunk\"; req {} PATCH \"$LOC\" {octet} -H 'Content-Range: {a}-{}' --data-binary @\"$WORK/chunk\"; [ \"$STATUS\" = 202 ] || ok=0; fi",
                                        b - a,
                                        l(&format!("patch#{}", k + 1)),
                                        b - 1
                                    );
                                }
                                match pieces.get(patched) {
                                    Some((a, b)) => {
                                        let _ = writeln!(
                                            s,
                                            "  if [ $ok = 1 ]; then slice \"{file}\" {a} {} \"$WORK/chunk\"; req {} PUT \"$(addq \"$LOC\" {put_q})\" {octet} -H 'Content-Range: {a}-{}' --data-binary @\"$WORK/chunk\"; fi",
                                            b - a,
                                            l("put"),
                                            b - 1
                                        );
                                    }
                                    None => {
                                        let _ = writeln!(s, "  [ $ok = 1 ] && req {} PUT \"$(addq \"$LOC\" {put_q})\" -H 'Content-Length: 0'", l("put"));
                                    }
                                }
                            }
                            PushMethod::SinglePost => {}
                        }
                        let _ = writeln!(s, "fi");
                    }
                }
            }
            Op::StartUpload {
                repo: r,
                session,
                blob,
                digest_algorithm,
            } => {
                let q = match digest_algorithm {
                    Some(DigestAlgo::Sha256) => query(&[("digest-algorithm", "sha256")]),
                    Some(DigestAlgo::Sha512) => query(&[("digest-algorithm", "sha512")]),
                    None => String::new(),
                };
                let _ = writeln!(
                    s,
                    "req {} POST \"{}/blobs/uploads/{q}\"",
                    l("post"),
                    repo(*r)
                );
                let _ = writeln!(
                    s,
                    "if [ \"$STATUS\" = 202 ]; then S{}=\"$LOC\"; else S{}=\"\"; fi; SENT{}=0; SBLOB{}={}",
                    session.0, session.0, session.0, session.0, blob.0
                );
            }
            Op::PatchChunk {
                session,
                start,
                end,
                streamed,
            } => {
                let n = session.0;
                let cr = if *streamed {
                    String::new()
                } else {
                    format!("-H 'Content-Range: {}-{}'", start, end.saturating_sub(1))
                };
                let _ = writeln!(
                    s,
                    "if [ -n \"${{S{n}:-}}\" ]; then f=\"$(blobfile ${{SBLOB{n}}})\"; slice \"$f\" {start} {} \"$WORK/chunk\"; req {} PATCH \"$S{n}\" {octet} {cr} --data-binary @\"$WORK/chunk\"; if [ \"${{STATUS:0:1}}\" = 2 ]; then [ -n \"$LOC\" ] && S{n}=\"$LOC\"; SENT{n}={}; fi; fi",
                    end.saturating_sub(*start),
                    l("patch"),
                    if *streamed {
                        format!("$(( SENT{n} + {} ))", end.saturating_sub(*start))
                    } else {
                        end.to_string()
                    }
                );
            }
            Op::CompleteUpload {
                session,
                rest_in_body,
                digest,
            } => {
                let n = session.0;
                // The digest depends on the session's blob: precompute per blob.
                let mut cases = String::new();
                for (bi, file) in &blob_files {
                    let id = crate::model::BlobId(*bi as u16);
                    if let Some(bytes) = content.blob(id) {
                        let algo = content.blob_algo(id).unwrap_or_default();
                        let _ = write!(
                            cases,
                            "{bi}) D={}; SIZE={}; F=\"{file}\";; ",
                            shq(&chosen_digest(*digest, algo, bytes)),
                            bytes.len()
                        );
                    }
                }
                let _ = writeln!(
                    s,
                    "if [ -n \"${{S{n}:-}}\" ]; then case \"${{SBLOB{n}}}\" in {cases}esac"
                );
                if *rest_in_body {
                    let _ = writeln!(
                        s,
                        "  if [ \"${{SENT{n}}}\" -lt \"$SIZE\" ]; then slice \"$F\" \"${{SENT{n}}}\" $(( SIZE - SENT{n} )) \"$WORK/chunk\"; req {} PUT \"$(addq \"$S{n}\" \"digest=$D\")\" {octet} -H \"Content-Range: ${{SENT{n}}}-$(( SIZE - 1 ))\" --data-binary @\"$WORK/chunk\"; else req {} PUT \"$(addq \"$S{n}\" \"digest=$D\")\"; fi",
                        l("put"),
                        l("put")
                    );
                } else {
                    let _ = writeln!(
                        s,
                        "  req {} PUT \"$(addq \"$S{n}\" \"digest=$D\")\"",
                        l("put")
                    );
                }
                let _ = writeln!(s, "fi");
            }
            Op::UploadStatus { session } => {
                let n = session.0;
                let _ = writeln!(
                    s,
                    "[ -n \"${{S{n}:-}}\" ] && req {} GET \"$S{n}\"",
                    l("get")
                );
            }
            Op::CancelUpload { session } => {
                let n = session.0;
                let _ = writeln!(
                    s,
                    "[ -n \"${{S{n}:-}}\" ] && req {} DELETE \"$S{n}\"",
                    l("delete")
                );
            }
            Op::MountBlob {
                repo: r,
                blob,
                from,
            } => {
                let dg = content
                    .blob_digest(*blob)
                    .unwrap_or("sha256:unknown")
                    .to_string();
                let mut q = format!(
                    "mount={}",
                    url::form_urlencoded::byte_serialize(dg.as_bytes()).collect::<String>()
                );
                if let Some(fr) = from {
                    let _ = write!(q, "&from=$NS/r{}", fr.0);
                }
                let _ = writeln!(
                    s,
                    "req {} POST \"{}/blobs/uploads/?{q}\"",
                    l("post"),
                    repo(*r)
                );
            }
            Op::HeadBlob { repo: r, blob } => {
                let dg = content.blob_digest(*blob).unwrap_or("sha256:unknown");
                let _ = writeln!(s, "req {} HEAD \"{}/blobs/{dg}\"", l("head"), repo(*r));
            }
            Op::GetBlob {
                repo: r,
                blob,
                range,
            } => {
                let dg = content.blob_digest(*blob).unwrap_or("sha256:unknown");
                let h = match range {
                    Some((a, Some(b))) => format!(" -H 'Range: bytes={a}-{b}'"),
                    Some((a, None)) => format!(" -H 'Range: bytes={a}-'"),
                    None => String::new(),
                };
                let _ = writeln!(s, "req {} GET \"{}/blobs/{dg}\"{h}", l("get"), repo(*r));
            }
            Op::GetBlobRaw { repo: r, digest } => {
                let _ = writeln!(
                    s,
                    "req {} GET \"{}/blobs/\"{}",
                    l("get"),
                    repo(*r),
                    shq(&path_segment(digest))
                );
            }
            Op::HeadManifest { repo: r, reference } | Op::GetManifest { repo: r, reference } => {
                let (lab, m) = if matches!(op, Op::HeadManifest { .. }) {
                    ("head", "HEAD")
                } else {
                    ("get", "GET")
                };
                let rs = path_segment(&reference_string(reference, content));
                let _ = writeln!(
                    s,
                    "req {} {m} \"{}/manifests/\"{} -H {}",
                    l(lab),
                    repo(*r),
                    shq(&rs),
                    shq(&format!("Accept: {accept}"))
                );
            }
            Op::PushManifest {
                repo: r,
                manifest,
                reference,
                tags,
                content_type,
            } => {
                let Some(file) = manifest_files.get(&(manifest.0 as usize)) else {
                    continue;
                };
                let rs = path_segment(&reference_string(reference, content));
                let pairs: Vec<(&str, &str)> = tags.iter().map(|t| ("tag", t.as_str())).collect();
                let ct = match content_type {
                    ContentTypeChoice::Matching => format!(
                        " -H {}",
                        shq(&format!(
                            "Content-Type: {}",
                            content
                                .manifest_media_type(*manifest)
                                .unwrap_or(OCI_MANIFEST)
                        ))
                    ),
                    ContentTypeChoice::Missing => " -H 'Content-Type:'".to_string(),
                    ContentTypeChoice::Other(o) => {
                        format!(" -H {}", shq(&format!("Content-Type: {o}")))
                    }
                };
                let _ = writeln!(
                    s,
                    "req {} PUT \"{}/manifests/\"{}{ct} --data-binary @\"{file}\"",
                    l("put"),
                    repo(*r),
                    shq(&format!("{rs}{}", query(&pairs)))
                );
            }
            Op::PushBadManifest {
                repo: r,
                reference,
                body,
            } => {
                let bytes = crate::exec::bad_manifest_body(body);
                let file = body_file(format!("bad{i}.json"), &bytes, &mut s)?;
                let rs = path_segment(&reference_string(reference, content));
                let _ = writeln!(
                    s,
                    "req {} PUT \"{}/manifests/\"{} -H 'Content-Type: {OCI_MANIFEST}' --data-binary @\"{file}\"",
                    l("put"),
                    repo(*r),
                    shq(&rs)
                );
            }
            Op::ListTags { repo: r, n, last } => {
                let ns = n.map(|n| n.to_string());
                let mut pairs = Vec::new();
                if let Some(n) = &ns {
                    pairs.push(("n", n.as_str()));
                }
                if let Some(la) = last {
                    pairs.push(("last", la.as_str()));
                }
                let _ = writeln!(
                    s,
                    "req {} GET \"{}/tags/list\"{}",
                    l("get"),
                    repo(*r),
                    shq(&query(&pairs))
                );
            }
            Op::ListTagsPaged { repo: r, n } => {
                let _ = writeln!(
                    s,
                    "u=\"{}/tags/list?n={n}\"; for p in $(seq 1 50); do req \"op{i}:page#$p\" GET \"$u\"; [ \"$STATUS\" = 200 ] && [ -n \"$LINK\" ] && [ \"$LINK\" != \"$u\" ] || break; u=\"$LINK\"; done",
                    repo(*r)
                );
            }
            Op::ListReferrers {
                repo: r,
                subject,
                artifact_type,
            } => {
                let rs = path_segment(&reference_string(subject, content));
                let q = match artifact_type {
                    Some(a) => query(&[("artifactType", a)]),
                    None => String::new(),
                };
                let _ = writeln!(
                    s,
                    "req {} GET \"{}/referrers/\"{}",
                    l("get"),
                    repo(*r),
                    shq(&format!("{rs}{q}"))
                );
            }
            Op::Catalog { n } => {
                let q = n.map(|n| format!("?n={n}")).unwrap_or_default();
                let _ = writeln!(s, "req {} GET \"/v2/_catalog{q}\"", l("get"));
            }
            Op::DeleteManifest { repo: r, reference } => {
                let rs = path_segment(&reference_string(reference, content));
                let _ = writeln!(
                    s,
                    "req {} DELETE \"{}/manifests/\"{}",
                    l("delete"),
                    repo(*r),
                    shq(&rs)
                );
            }
            Op::DeleteBlob { repo: r, blob } => {
                let dg = content.blob_digest(*blob).unwrap_or("sha256:unknown");
                let _ = writeln!(s, "req {} DELETE \"{}/blobs/{dg}\"", l("delete"), repo(*r));
            }
            Op::BadName { name, endpoint } => {
                let name: String = name
                    .split('/')
                    .map(path_segment)
                    .collect::<Vec<_>>()
                    .join("/");
                let (lab, m, rest) = match endpoint {
                    BadNameEndpoint::TagList => ("get", "GET", "tags/list"),
                    BadNameEndpoint::ManifestGet => ("get", "GET", "manifests/latest"),
                    BadNameEndpoint::BlobUpload => ("post", "POST", "blobs/uploads/"),
                };
                let _ = writeln!(
                    s,
                    "req {} {m} {}",
                    l(lab),
                    shq(&format!("/v2/{name}/{rest}"))
                );
            }
        }
    }
    // blobfile N: path of blob N's body (used by session ops).
    let mut bf = String::from("\n");
    let _ = write!(bf, "blobfile() {{ case \"$1\" in ");
    for (i, file) in &blob_files {
        let _ = write!(bf, "{i}) echo \"{file}\";; ");
    }
    let _ = writeln!(bf, "esac; }}");
    // Define blobfile before the ops run: insert after the header.
    let marker = "DIVERGING=";
    if let Some(pos) = s.find(marker) {
        s.insert_str(pos, &bf[1..]);
    }
    let _ = writeln!(
        s,
        "\necho \"expected divergence: {} at op #{} ({}), field {}: expected {}, {} answered {}\"",
        d.rule.replace('"', "'"),
        d.op_index,
        d.label.replace('"', "'"),
        d.field.replace('"', "'"),
        d.expected.replace(['"', '$', '`'], "'"),
        d.target.replace('"', "'"),
        d.actual.replace(['"', '$', '`'], "'")
    );
    Ok(s)
}

// ------------------------------------------------------------------------------------------
// report.md
// ------------------------------------------------------------------------------------------

/// The human-readable report of one finding.
pub fn render_report_md(f: &Finding) -> String {
    let d = &f.divergence;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {} — {} `{}` on `{}`\n",
        f.id, d.class, d.rule, d.target
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| class | **{}** |", d.class);
    let _ = writeln!(s, "| target | `{}` |", d.target);
    let _ = writeln!(s, "| endpoint | `{}` |", d.endpoint);
    let _ = writeln!(s, "| field | `{}` |", d.field);
    let _ = writeln!(s, "| rule | `{}` |", d.rule);
    let _ = writeln!(s, "| op / exchange | #{} `{}` |", d.op_index, d.label);
    let _ = writeln!(s, "| expected | `{}` |", d.expected.replace('|', "\\|"));
    let _ = writeln!(s, "| actual | `{}` |", d.actual.replace('|', "\\|"));
    if let Some(r) = &d.reference {
        let _ = writeln!(s, "| reference | `{}` |", r.replace('|', "\\|"));
    }
    let _ = writeln!(
        s,
        "| seed / case | {} / case {} (case seed {}) |",
        f.seed, f.first_seen_case, f.case_seed
    );
    let _ = writeln!(
        s,
        "| shrunk | {} → {} ops ({} runs{}) |",
        f.original_ops_len,
        f.ops.ops.len(),
        f.shrink_runs,
        if f.confirmed {
            ", confirmed"
        } else {
            ", NOT re-confirmed"
        }
    );
    let _ = writeln!(s, "\n{}\n", d.summary);
    let _ = writeln!(s, "## Spec\n\n> {}\n", d.spec);
    let _ = writeln!(s, "## Minimal sequence\n");
    let _ = writeln!(s, "```toml");
    let sc = Scenario::from_sequence(&f.ops);
    let _ = writeln!(
        s,
        "{}",
        crate::scenario::to_string(&sc).unwrap_or_else(|e| e.to_string())
    );
    let _ = writeln!(s, "```\n");
    let _ = writeln!(
        s,
        "Replay: `ocidiff replay scenario.toml`; standalone: `REGISTRY=http://host:port ./repro.sh`.\n"
    );
    if let Some(o) = &f.outcome {
        let ti = o.targets.iter().position(|t| *t == d.target);
        if let (Some(ti), Some(op)) = (ti, o.ops.get(d.op_index)) {
            let tgt = op.per_target.get(ti).cloned().unwrap_or_default();
            let refx = op.per_target.first().cloned().unwrap_or_default();
            let ref_name = o
                .targets
                .first()
                .cloned()
                .unwrap_or_else(|| "reference".into());
            let tj = serde_json::to_string_pretty(&tgt).unwrap_or_default();
            let rj = serde_json::to_string_pretty(&refx).unwrap_or_default();
            let _ = writeln!(s, "## Op #{} observations\n", d.op_index);
            if ti != 0 {
                let _ = writeln!(s, "### Diff (`{ref_name}` → `{}`)\n\n```diff", d.target);
                let diff = similar::TextDiff::from_lines(&rj, &tj);
                let _ = write!(
                    s,
                    "{}",
                    diff.unified_diff()
                        .context_radius(4)
                        .header(&ref_name, &d.target)
                );
                let _ = writeln!(s, "```\n");
                let _ = writeln!(s, "### `{ref_name}`\n\n```json\n{rj}\n```\n");
            }
            let _ = writeln!(s, "### `{}`\n\n```json\n{tj}\n```", d.target);
        }
    }
    s
}

// ------------------------------------------------------------------------------------------
// Terminal
// ------------------------------------------------------------------------------------------

/// Progress bar on stderr (cases, ops/s, findings); a no-op when disabled.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    start: std::time::Instant,
    ops: u64,
    findings: usize,
}

impl Progress {
    pub fn new(total_cases: u64, enabled: bool) -> Progress {
        let bar = enabled.then(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                Some(total_cases),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} cases {msg}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b
        });
        Progress {
            bar,
            start: std::time::Instant::now(),
            ops: 0,
            findings: 0,
        }
    }

    pub fn case_done(&mut self, ops: u64) {
        self.ops += ops;
        self.refresh();
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    pub fn set_findings(&mut self, n: usize) {
        self.findings = n;
        self.refresh();
    }

    pub fn message(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.println(msg);
        }
    }

    fn refresh(&self) {
        if let Some(b) = &self.bar {
            let secs = self.start.elapsed().as_secs_f64().max(0.001);
            b.set_message(format!(
                "| {:.0} ops/s | {} findings",
                self.ops as f64 / secs,
                self.findings
            ));
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The end-of-run table: per target, violations / variations / unsupported; one line per finding.
pub fn summary_table(targets: &[String], findings: &[Finding]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<24} {:>10} {:>10} {:>11}",
        "target", "violations", "variations", "unsupported"
    );
    for t in targets {
        let count = |c: Class| {
            findings
                .iter()
                .filter(|f| f.divergence.target == *t && f.divergence.class == c)
                .count()
        };
        let _ = writeln!(
            s,
            "{:<24} {:>10} {:>10} {:>11}",
            t,
            count(Class::Violation),
            count(Class::Variation),
            count(Class::Unsupported)
        );
    }
    if !findings.is_empty() {
        let _ = writeln!(s);
    }
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by(|a, b| {
        (a.divergence.class, &a.divergence.target, &a.id).cmp(&(
            b.divergence.class,
            &b.divergence.target,
            &b.id,
        ))
    });
    for f in sorted {
        let d = &f.divergence;
        let _ = writeln!(
            s,
            "{} {:<11} {:<16} {:<8} {:<34} {}",
            f.id,
            d.class.to_string(),
            d.target,
            d.endpoint,
            d.rule,
            d.summary.chars().take(100).collect::<String>()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use crate::oracle::Divergence;

    fn finding(id: &str, seq: Sequence) -> Finding {
        Finding {
            id: id.into(),
            divergence: Divergence {
                class: Class::Violation,
                target: "other".into(),
                op_index: 1,
                label: "get".into(),
                endpoint: "end-2".into(),
                field: "status".into(),
                rule: "end-2/get-200".into(),
                spec: "A GET request ... MUST be `200 OK`.".into(),
                summary: "GET end-2 answered 500".into(),
                expected: "200".into(),
                actual: "500".into(),
                reference: Some("200".into()),
            },
            original_ops_len: 10,
            ops: seq,
            seed: 7,
            first_seen_case: 3,
            case_seed: 10,
            shrink_runs: 4,
            confirmed: true,
            outcome: None,
        }
    }

    #[test]
    fn writes_valid_json_after_each_finding() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = FindingsWriter::new(dir.path().join("out")).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(w.json_path()).unwrap()).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 0);
        let seq = crate::generate::generate_sequence(3, &crate::generate::GenConfig::default());
        for (k, id) in ["aaaaaaaaaaaa", "bbbbbbbbbbbb"].iter().enumerate() {
            let f = finding(id, seq.clone());
            let fdir = w.add(&f).unwrap();
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(w.json_path()).unwrap()).unwrap();
            let arr = v.as_array().unwrap();
            assert_eq!(arr.len(), k + 1);
            let e = &arr[k];
            for key in [
                "id",
                "class",
                "target",
                "endpoint",
                "rule",
                "spec",
                "summary",
                "ops",
                "reproducer",
                "seed",
                "first_seen_case",
            ] {
                assert!(!e[key].is_null(), "missing {key}");
            }
            assert_eq!(e["class"], "violation");
            // The reproducer replays: it parses back to the same sequence.
            let sc = crate::scenario::read(fdir.join("scenario.toml")).unwrap();
            assert_eq!(sc.sequence(), seq);
            assert_eq!(sc.divergence.unwrap().rule, "end-2/get-200");
            let sh = std::fs::read_to_string(fdir.join("repro.sh")).unwrap();
            assert!(sh.starts_with("#!/usr/bin/env bash"));
            assert!(sh.contains("REGISTRY_USER"));
            let md = std::fs::read_to_string(fdir.join("report.md")).unwrap();
            assert!(md.contains("end-2/get-200") && md.contains("MUST be `200 OK`"));
        }
        let table = summary_table(&["reference".into(), "other".into()], &[finding("x", seq)]);
        assert!(table.contains("other") && table.contains("end-2/get-200"));
    }

    #[test]
    fn repro_script_is_valid_bash() {
        if std::process::Command::new("bash")
            .arg("--version")
            .output()
            .is_err()
        {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for seed in 0..8u64 {
            let seq =
                crate::generate::generate_sequence(seed, &crate::generate::GenConfig::default());
            let content = Content::render(&seq.content).unwrap();
            let f = finding("cccccccccccc", seq);
            let sh =
                render_repro_sh(&f, &content, "http://u:secret@127.0.0.1:1", dir.path()).unwrap();
            assert!(!sh.contains("u:secret@"), "credentials must be redacted");
            let p = dir.path().join("r.sh");
            std::fs::write(&p, &sh).unwrap();
            let out = std::process::Command::new("bash")
                .arg("-n")
                .arg(&p)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "seed {seed}: {}\n{sh}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
