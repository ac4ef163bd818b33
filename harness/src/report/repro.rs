//! `repro.sh`: a finding's minimal sequence as a standalone bash + curl script, rendered from
//! the same request plans the executor runs (`vocab::plan`), step for step: same methods, paths,
//! query pairs, headers and bodies, same conditions and session bookkeeping. A test runs both
//! against one registry and compares what went out.

use crate::ops::Sequence;
use crate::vocab::content::Content;
use crate::vocab::fs::write_atomic;
use crate::vocab::plan::{
    name_segments, path_segment, Body, Effect, Plan, Seg, Step, Url, Val, When, OCTET_STREAM,
};
use crate::vocab::spec::DigestChoice;
use crate::vocab::{BlobId, ManifestId};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Bodies up to this size are embedded (base64) in `repro.sh`; larger ones go to a sidecar file.
const EMBED_LIMIT: usize = 64 << 10;

/// Pages a paged step follows at most (the executor's default).
const MAX_PAGES: u32 = 50;

/// Single-quotes a string for bash.
pub fn shq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn form(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

const SCRIPT_HEAD: &str = r#"#!/usr/bin/env bash
# ocidiff reproducer (standalone: bash + curl + base64).
#   REGISTRY=http://host:port ./repro.sh
# Credentials (HTTP basic) come from REGISTRY_USER / REGISTRY_PASS; nothing secret is stored here.
set -u
REGISTRY="${REGISTRY:-__DEFAULT_URL__}"
REGISTRY="${REGISTRY%/}"
NS="${NS:-ocidiffrepro$(date +%s)$$}"
NSQ="$(printf '%s' "$NS" | sed 's#/#%2F#g')"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$(mktemp -d)"
BODIES="$WORK"
declare -A OPEN_UPLOADS=()
# cancel_open: as ocidiff's executor does when a case ends, every upload session this script
# opened and did not close or cancel gets a DELETE (not part of the verdict).
cancel_open() {
  local k
  for k in $(printf '%s\n' "${!OPEN_UPLOADS[@]}" | LC_ALL=C sort); do
    curl -s -o /dev/null "${AUTH[@]+"${AUTH[@]}"}" -X DELETE --max-time 10 "${OPEN_UPLOADS[$k]}" || true
  done
}
trap 'cancel_open; rm -rf "$BODIES"' EXIT
AUTH=()
if [ -n "${REGISTRY_USER:-}" ]; then AUTH=(-u "${REGISTRY_USER}:${REGISTRY_PASS:-}"); fi
STATUS=""; LOC=""; LINK=""; MINLEN=""; RUN=1; LAST=""; OPLOC=""; URL=""; BLEN=0
ANSWERED=0; REACHED=0; DIVSTATUS=""; DIVURL=""
command -v curl >/dev/null || { echo "CANNOT RUN: curl not found" >&2; exit 2; }

# req LABEL METHOD URL [curl args...]: prints the response head, sets STATUS, LOC (absolute) and
# LINK (the rel="next" target, absolute); keeps the diverging exchange's response for the verdict.
req() {
  local label="$1" method="$2" url="$3"; shift 3
  case "$url" in http://*|https://*) ;; *) url="$REGISTRY$url" ;; esac
  local head="$WORK/head" body="$WORK/body"
  local -a m=(-X "$method")
  if [ "$method" = HEAD ]; then m=(-I); fi
  : > "$head"; : > "$body"
  curl -sS -L --max-redirs 5 "${AUTH[@]+"${AUTH[@]}"}" "${m[@]}" -D "$head" -o "$body" --max-time 30 "$@" "$url" || true
  STATUS="$(grep -E '^HTTP/' "$head" 2>/dev/null | tail -n1 | awk '{print $2}')"
  if [ -n "$STATUS" ]; then ANSWERED=1; fi
  if [ "$label" = "${DIVERGING:-}" ]; then
    REACHED=1; DIVSTATUS="$STATUS"; DIVURL="$url"; cp "$head" "$WORK/div.head"; cp "$body" "$WORK/div.body"
  fi
  LOC="$(grep -i '^location:' "$head" 2>/dev/null | tail -n1 | cut -d' ' -f2- | tr -d '\r')"
  MINLEN="$(grep -i '^oci-chunk-min-length:' "$head" 2>/dev/null | tail -n1 | cut -d' ' -f2- | tr -d '\r ')"
  LINK="$(grep -i '^link:' "$head" 2>/dev/null | grep -i 'rel="\{0,1\}next' | head -n1 | sed -e 's/^[^<]*<//' -e 's/>.*$//' | tr -d '\r')"
  local origin; origin="$(printf '%s' "$url" | sed -E 's#^(https?://[^/]+).*#\1#')"
  case "$LOC" in ""|http://*|https://*) ;; /*) LOC="$origin$LOC" ;; *) LOC="${url%/*}/$LOC" ;; esac
  case "$LINK" in ""|http://*|https://*) ;; /*) LINK="$origin$LINK" ;; *) LINK="${url%/*}/$LINK" ;; esac
  track_upload "$method" "$url"
  echo "=== [$label] $method $url -> ${STATUS:-no response}"
  if [ "${SHOW:-0}" = 1 ] || [ "$label" = "$DIVERGING" ]; then
    echo "--- response headers"; cat "$head" 2>/dev/null
    echo "--- response body (first 2000 bytes)"; head -c 2000 "$body" 2>/dev/null; echo
  fi
}

# urlpath URL: the path of an absolute URL (no query).
urlpath() { local p="${1%%\?*}"; p="${p#*://}"; case "$p" in */*) echo "/${p#*/}" ;; *) echo / ;; esac; }

# track_upload METHOD URL: follows upload sessions through the last answer (STATUS, LOC): a 202
# with an upload Location opens (or moves) one, a 2xx PUT closes it, a DELETE answered 2xx or
# 404 cancels it.
track_upload() {
  local path; path="$(urlpath "$2")"
  if [ -n "${OPEN_UPLOADS[$path]+x}" ]; then
    case "$1:$STATUS" in PUT:2??|DELETE:2??|DELETE:404) unset "OPEN_UPLOADS[$path]"; return ;; esac
  fi
  [ "$STATUS" = 202 ] || return 0
  case "$LOC" in */uploads/*) ;; *) return 0 ;; esac
  unset "OPEN_UPLOADS[$path]"
  OPEN_UPLOADS["$(urlpath "$LOC")"]="$LOC"
}

# skipped LABEL WHY: a step the plan cannot send.
skipped() { echo "=== [$1] not sent: $2"; RUN=0; }

# addq URL PAIR: appends a query pair to a URL that may already have a query.
addq() { case "$1" in *\?*) echo "$1&$2" ;; *) echo "$1?$2" ;; esac; }

# slice FILE OFFSET LEN OUT
slice() { tail -c +"$(( $2 + 1 ))" "$1" | head -c "$3" > "$4"; }

# withlast URL N LAST: URL with n=N and last=LAST (other query pairs kept).
withlast() {
  local base="${1%%\?*}" q="" out="" p
  case "$1" in *\?*) q="${1#*\?}" ;; esac
  local -a ps=()
  IFS='&' read -ra ps <<< "$q"
  for p in ${ps[@]+"${ps[@]}"}; do case "$p" in n=*|last=*|"") ;; *) out="$out&$p" ;; esac; done
  out="${out#&}"
  echo "$base?${out}${out:+&}n=$2&last=$3"
}

# pagetags: the tags of the last tag-list body, one per line.
pagetags() {
  tr -d ' \n\r\t' < "$WORK/body" | sed -n 's/.*"tags":\[\([^]]*\)\].*/\1/p' | tr ',' '\n' | sed -e 's/^"//' -e 's/"$//' | grep -v '^$'
}
"#;

/// The URL without user / password (they come from `REGISTRY_USER` / `REGISTRY_PASS`).
pub fn strip_credentials(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.as_str().trim_end_matches('/').to_string()
        }
        Err(_) => crate::vocab::redact::redact(u),
    }
}

/// The files a script reads bodies from: embedded (base64) or beside it in `dir`.
struct Bodies {
    blobs: BTreeMap<u16, String>,
    manifests: BTreeMap<u16, String>,
}

fn body_file(name: String, bytes: &[u8], s: &mut String, dir: &Path) -> anyhow::Result<String> {
    if bytes.len() <= EMBED_LIMIT {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let _ = writeln!(s, "printf '%s' '{b64}' | base64 -d > \"$BODIES/{name}\"");
        Ok(format!("$BODIES/{name}"))
    } else {
        write_atomic(&dir.join(&name), bytes)?;
        Ok(format!("$HERE/{name}"))
    }
}

/// What a script needs to know of a finding: its id, where it diverged and what was expected.
pub struct ReproHead<'a> {
    pub comment: &'a str,
    /// `op<N>:<label>` of the diverging exchange (its response is printed in full).
    pub diverging: &'a str,
}

/// Renders the standalone reproducer of `seq`; large bodies are written next to it in `dir`.
pub fn render(
    seq: &Sequence,
    content: &Content,
    default_url: &str,
    head: &ReproHead<'_>,
    dir: &Path,
) -> anyhow::Result<String> {
    let (mut s, bodies) = preamble(content, default_url, head.comment, head.diverging, dir)?;
    for (i, op) in seq.ops.iter().enumerate() {
        let _ = writeln!(
            s,
            "\n# op {i}: {}",
            serde_json::to_string(op).unwrap_or_default()
        );
        let plan = op.op().plan(content);
        render_plan(&plan, i, content, &bodies, &mut s, dir)?;
    }
    Ok(s)
}

/// The start every reproducer shares: the script head with its default URL, the comment,
/// `DIVERGING` (the label whose response the verdict keeps; empty: none), the bodies and the
/// session helpers.
fn preamble(
    content: &Content,
    default_url: &str,
    comment: &str,
    diverging: &str,
    dir: &Path,
) -> anyhow::Result<(String, Bodies)> {
    let mut s = SCRIPT_HEAD.replace("__DEFAULT_URL__", &strip_credentials(default_url));
    for line in comment.lines() {
        let _ = writeln!(s, "# {line}");
    }
    let _ = writeln!(s, "DIVERGING={}", shq(diverging));
    let bodies = write_bodies(content, &mut s, dir)?;
    session_helpers(content, &bodies, &mut s);
    Ok((s, bodies))
}

fn write_bodies(content: &Content, s: &mut String, dir: &Path) -> anyhow::Result<Bodies> {
    let mut b = Bodies {
        blobs: BTreeMap::new(),
        manifests: BTreeMap::new(),
    };
    for i in 0..content.blob_count() {
        if let Some(bytes) = content.blob(BlobId(i as u16)) {
            b.blobs
                .insert(i as u16, body_file(format!("blob{i}.bin"), bytes, s, dir)?);
        }
    }
    for i in 0..content.manifest_count() {
        if let Some(bytes) = content.manifest(ManifestId(i as u16)) {
            b.manifests.insert(
                i as u16,
                body_file(format!("manifest{i}.json"), bytes, s, dir)?,
            );
        }
    }
    Ok(b)
}

/// `blobfile N`, `blobsize N` and `sdigest CHOICE N` for steps on an upload session's blob.
fn session_helpers(content: &Content, bodies: &Bodies, s: &mut String) {
    let _ = write!(s, "blobfile() {{ case \"$1\" in ");
    for (i, f) in &bodies.blobs {
        let _ = write!(s, "{i}) echo \"{f}\";; ");
    }
    let _ = writeln!(s, "esac; }}");
    let _ = write!(s, "blobsize() {{ case \"$1\" in ");
    for i in bodies.blobs.keys() {
        let len = content.blob(BlobId(*i)).map(|b| b.len()).unwrap_or(0);
        let _ = write!(s, "{i}) echo {len};; ");
    }
    let _ = writeln!(s, "*) echo 0;; esac; }}");
    let _ = write!(s, "sdigest() {{ case \"$1:$2\" in ");
    for i in bodies.blobs.keys() {
        let id = BlobId(*i);
        let (Some(_), Some(algo)) = (content.blob(id), content.blob_algo(id)) else {
            continue;
        };
        for (name, choice) in [
            ("correct", DigestChoice::Correct),
            ("wrong", DigestChoice::Wrong),
            ("malformed", DigestChoice::Malformed),
        ] {
            let _ = write!(
                s,
                "{name}:{i}) echo {};; ",
                shq(&form(&content.blob_digest_choice(id, choice, algo)))
            );
        }
    }
    let _ = writeln!(s, "esac; }}");
}

fn choice_name(c: DigestChoice) -> &'static str {
    match c {
        DigestChoice::Correct => "correct",
        DigestChoice::Wrong => "wrong",
        DigestChoice::Malformed => "malformed",
    }
}

/// A path as a bash word: literal parts single-quoted, repositories as `$NS/r<N>`.
fn path_word(segs: &[Seg]) -> String {
    let mut w = String::new();
    for seg in segs {
        match seg {
            Seg::Lit(l) => w.push_str(&shq(l)),
            Seg::Repo(r) => {
                let _ = write!(w, "\"$NS\"{}", shq(&format!("/r{}", r.0)));
            }
            Seg::Escaped(v) => w.push_str(&shq(&path_segment(v))),
            Seg::Name(n) => w.push_str(&shq(&name_segments(n))),
        }
    }
    w
}

/// Escapes a literal for use inside bash double quotes.
fn dq(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('$', "\\$")
        .replace('`', "\\`")
}

/// A value as the inside of a bash double-quoted word (form-encoded for query strings).
fn val_expr(v: &Val, query: bool) -> String {
    match v {
        Val::Lit(l) if query => dq(&form(l)),
        Val::Lit(l) => dq(l),
        Val::Repo(r) if query => format!("${{NSQ}}%2Fr{}", r.0),
        Val::Repo(r) => format!("$NS/r{}", r.0),
        Val::SessionDigest(sess, c) => {
            format!("$(sdigest {} \"${{SBLOB{}:-}}\")", choice_name(*c), sess.0)
        }
    }
}

/// A query pair as a bash word.
fn query_word(key: &str, v: &Val) -> String {
    format!("\"{}={}\"", dq(&form(key)), val_expr(v, true))
}

fn header_word(name: &str, v: &Val) -> String {
    format!("\"{}: {}\"", dq(name), val_expr(v, false))
}

fn render_plan(
    plan: &Plan,
    op: usize,
    content: &Content,
    bodies: &Bodies,
    s: &mut String,
    dir: &Path,
) -> anyhow::Result<()> {
    let _ = writeln!(s, "RUN=1; OPLOC=\"\"; LAST=\"\"");
    for (k, step) in plan.steps.iter().enumerate() {
        let when = match step.when {
            When::Always => String::new(),
            When::PrevStatus(st) => format!(" && [ \"$LAST\" = {st} ]"),
            When::PrevSuccess => " && [ \"${LAST:0:1}\" = 2 ]".to_string(),
        };
        let _ = writeln!(s, "if [ \"$RUN\" = 1 ]{when}; then");
        let label = shq(&format!("op{op}:{}", step.label));
        match &step.url {
            Url::Path(segs) => {
                let _ = writeln!(s, "  URL={}", path_word(segs));
            }
            Url::Location => {
                let _ = writeln!(
                    s,
                    "  URL=\"$OPLOC\"; [ -n \"$URL\" ] || skipped {label} 'no upload location'"
                );
            }
            Url::Session(sess) => {
                let _ = writeln!(
                    s,
                    "  URL=\"${{S{}:-}}\"; [ -n \"$URL\" ] || skipped {label} 'no upload location'",
                    sess.0
                );
            }
            Url::Unavailable(why) => {
                let _ = writeln!(s, "  skipped {label} {}", shq(why));
            }
        }
        let _ = writeln!(s, "  if [ \"$RUN\" = 1 ]; then");
        for (key, v) in &step.query {
            let _ = writeln!(s, "    URL=\"$(addq \"$URL\" {})\"", query_word(key, v));
        }
        if let Some(at) = step.chunks_at_min {
            // As the executor: chunks of the minimum the last answer advertised, plus delta.
            let f = bodies.blobs.get(&at.blob.0).cloned().unwrap_or_default();
            let len = content.blob(at.blob).map_or(0, |b| b.len());
            let headers: String = step
                .headers
                .iter()
                .map(|(n, v)| format!(" -H {}", header_word(n, v)))
                .collect();
            let _ = writeln!(
                s,
                "    len={len}; if [ -n \"$MINLEN\" ]; then size=$(( MINLEN + ({delta}) )); else size=$(( (len + 1) / 2 )); fi\n    [ \"$size\" -ge 1 ] || size=1; cap=$(( (len + 63) / 64 )); [ \"$size\" -ge \"$cap\" ] || size=$cap\n    a=0; i=1\n    while [ \"$a\" -lt \"$len\" ] && [ \"$LAST\" = 202 ]; do\n      e=$(( a + size < len ? a + size : len ))\n      slice \"{f}\" \"$a\" $(( e - a )) \"$WORK/chunk\"\n      req \"op{op}:patch#$i\" PATCH \"$URL\"{headers} -H \"content-range: $a-$(( e - 1 ))\" --data-binary @\"$WORK/chunk\"\n      LAST=\"$STATUS\"; if [ -n \"$LOC\" ]; then OPLOC=\"$LOC\"; URL=\"$LOC\"; fi\n      a=$e; i=$(( i + 1 ))\n    done",
                delta = at.delta
            );
        } else if let Some(n) = step.page_size {
            let _ = writeln!(
                s,
                "    for p in $(seq 1 {MAX_PAGES}); do\n      req \"op{op}:{}#$p\" {} \"$URL\"; LAST=\"$STATUS\"; NEXT=\"$LINK\"\n      if [ -z \"$NEXT\" ] && [ \"$STATUS\" = 200 ] && [ {n} -gt 0 ] && [ \"$(pagetags | grep -c .)\" = {n} ]; then NEXT=\"$(withlast \"$URL\" {n} \"$(pagetags | tail -n1)\")\"; fi\n      [ \"$STATUS\" = 200 ] && [ -n \"$NEXT\" ] && [ \"$NEXT\" != \"$URL\" ] || break\n      URL=\"$NEXT\"\n    done",
                step.label,
                step.method.as_str()
            );
        } else {
            render_request(step, &label, op, k, content, bodies, s, dir)?;
        }
        let _ = writeln!(s, "  fi\nfi");
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn render_request(
    step: &Step,
    label: &str,
    op: usize,
    k: usize,
    content: &Content,
    bodies: &Bodies,
    s: &mut String,
    dir: &Path,
) -> anyhow::Result<()> {
    let _ = writeln!(s, "    ARGS=(); BLEN=0");
    for (name, v) in &step.headers {
        let _ = writeln!(s, "    ARGS+=(-H {})", header_word(name, v));
    }
    let has_ct = step.headers.iter().any(|(n, _)| *n == "content-type");
    let has_cl = step.headers.iter().any(|(n, _)| *n == "content-length");
    // Sets BODY (a file) and BLEN, or leaves BODY empty.
    let _ = writeln!(s, "    BODY=\"\"");
    match &step.body {
        Body::Empty => {}
        Body::Blob { blob, start, end } => {
            let f = bodies.blobs.get(&blob.0).cloned().unwrap_or_default();
            let len = content.blob(*blob).map(|b| b.len() as u32).unwrap_or(0);
            let a = (*start).min(len);
            let e = end.unwrap_or(len).clamp(a, len);
            if a == 0 && e == len {
                let _ = writeln!(s, "    BODY=\"{f}\"; BLEN={len}");
            } else {
                let _ = writeln!(
                    s,
                    "    slice \"{f}\" {a} {} \"$WORK/chunk\"; BODY=\"$WORK/chunk\"; BLEN={}",
                    e - a,
                    e - a
                );
            }
        }
        Body::Manifest(m) => {
            let f = bodies.manifests.get(&m.0).cloned().unwrap_or_default();
            let len = content.manifest(*m).map(|b| b.len()).unwrap_or(0);
            let _ = writeln!(s, "    BODY=\"{f}\"; BLEN={len}");
        }
        Body::Bytes(b) => {
            let f = body_file(format!("body{op}-{k}.bin"), b, s, dir)?;
            let _ = writeln!(s, "    BODY=\"{f}\"; BLEN={}", b.len());
        }
        Body::SessionSlice {
            session,
            start,
            end,
        } => {
            let n = session.0;
            let _ = writeln!(
                s,
                "    sz=\"$(blobsize \"${{SBLOB{n}:-}}\")\"; a=$(( {start} < sz ? {start} : sz )); e=$(( {end} < sz ? {end} : sz )); [ \"$e\" -ge \"$a\" ] || e=$a; slice \"$(blobfile \"${{SBLOB{n}:-}}\")\" \"$a\" $(( e - a )) \"$WORK/chunk\"; BODY=\"$WORK/chunk\"; BLEN=$(( e - a ))"
            );
        }
        Body::SessionRest(session) | Body::SessionRestAfterGap(session) => {
            let n = session.0;
            let gap = u8::from(matches!(step.body, Body::SessionRestAfterGap(_)));
            let _ = writeln!(
                s,
                "    sz=\"$(blobsize \"${{SBLOB{n}:-}}\")\"; a=$(( SENT{n} + {gap} < sz ? SENT{n} + {gap} : sz ))\n    if [ \"$a\" -lt \"$sz\" ]; then slice \"$(blobfile \"${{SBLOB{n}:-}}\")\" \"$a\" $(( sz - a )) \"$WORK/chunk\"; BODY=\"$WORK/chunk\"; BLEN=$(( sz - a )); ARGS+=(-H 'content-type: {OCTET_STREAM}' -H \"content-range: $a-$(( sz - 1 ))\"); fi"
            );
        }
    }
    let needs_ct = !has_ct
        && !matches!(
            step.body,
            Body::SessionRest(_) | Body::SessionRestAfterGap(_)
        );
    let _ = writeln!(
        s,
        "    if [ -n \"$BODY\" ]; then ARGS+=(--data-binary @\"$BODY\"){}; {}fi",
        if needs_ct {
            "; ARGS+=(-H 'Content-Type:')"
        } else {
            ""
        },
        if step.method.has_body() && !has_cl {
            "else ARGS+=(-H 'Content-Length: 0'); "
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "    req {label} {} \"$URL\" ${{ARGS[@]+\"${{ARGS[@]}}\"}}",
        step.method.as_str()
    );
    for e in &step.effects {
        let line = match e {
            Effect::OpenSession { session, blob } => format!(
                "if [ \"$STATUS\" = 202 ]; then S{n}=\"$LOC\"; else S{n}=\"\"; fi; SENT{n}=0; SBLOB{n}={}",
                blob.0,
                n = session.0
            ),
            Effect::FollowSession(sess) => format!(
                "if [ \"${{STATUS:0:1}}\" = 2 ] && [ -n \"$LOC\" ]; then S{n}=\"$LOC\"; fi",
                n = sess.0
            ),
            Effect::SessionSentTo { session, end } => format!(
                "if [ \"${{STATUS:0:1}}\" = 2 ]; then SENT{n}={end}; fi",
                n = session.0
            ),
            Effect::SessionSentAdd(sess) => format!(
                "if [ \"${{STATUS:0:1}}\" = 2 ]; then SENT{n}=$(( ${{SENT{n}:-0}} + BLEN )); fi",
                n = sess.0
            ),
        };
        let _ = writeln!(s, "    {line}");
    }
    let _ = writeln!(
        s,
        "    LAST=\"$STATUS\"; if [ -n \"$LOC\" ]; then OPLOC=\"$LOC\"; fi"
    );
    Ok(())
}

/// The reproducer of a race finding: the prefix one request after the other, then every
/// client of the segment as a background job (its own scratch directory, its answers in its
/// own log), `wait`, the reads after; all of it `ATTEMPTS` times (default 5) in fresh
/// namespaces, since a race may need attempts. It prints the raw history; whether some order
/// of the ops explains it is the linearizability oracle's verdict:
/// `ocidiff race --replay race.toml` (exit 1: reproduced in at least one attempt).
pub fn render_race(
    case: &crate::generate::race::RaceCase,
    comment: &str,
    target: &str,
    default_url: &str,
    dir: &Path,
) -> anyhow::Result<String> {
    let content = Content::render(&case.content)?;
    let comment = format!(
        "{comment}\nVerdict: ocidiff race --replay \"$(dirname \"$0\")/race.toml\" --target {target}=$REGISTRY"
    );
    let (mut s, bodies) = preamble(&content, default_url, &comment, "", dir)?;
    let _ = writeln!(s, "BASE_NS=\"$NS\"; BASE_WORK=\"$WORK\"");
    let _ = writeln!(s, "for attempt in $(seq 1 \"${{ATTEMPTS:-5}}\"); do");
    let _ = writeln!(
        s,
        "NS=\"${{BASE_NS}}a$attempt\"; NSQ=\"$(printf '%s' \"$NS\" | sed 's#/#%2F#g')\"; WORK=\"$BASE_WORK\""
    );
    let _ = writeln!(s, "echo \"### attempt $attempt (namespace $NS)\"");
    for (i, op) in case.prefix.iter().enumerate() {
        let _ = writeln!(s, "\n# prefix op {i}: {}", serde_json::to_string(op)?);
        render_plan(&op.op().plan(&content), i, &content, &bodies, &mut s, dir)?;
    }
    for (c, client) in case.clients.iter().enumerate() {
        let _ = writeln!(s, "\n# client {c}, in the background");
        let _ = writeln!(s, "( WORK=\"$BASE_WORK/c{c}\"; mkdir -p \"$WORK\"; RUN=1");
        for (k, op) in client.ops.iter().enumerate() {
            let _ = writeln!(s, "# client {c} op {k}: {}", serde_json::to_string(op)?);
            let label = 100 * (c + 1) + k;
            render_plan(
                &op.op().plan(&content),
                label,
                &content,
                &bodies,
                &mut s,
                dir,
            )?;
        }
        let _ = writeln!(s, ") > \"$BASE_WORK/client{c}.log\" 2>&1 &");
    }
    let _ = writeln!(s, "wait");
    for c in 0..case.clients.len() {
        let _ = writeln!(s, "sed 's/^/[client {c}] /' \"$BASE_WORK/client{c}.log\"");
    }
    for (k, op) in case.after.iter().enumerate() {
        let _ = writeln!(
            s,
            "\n# read after the segment {k}: {}",
            serde_json::to_string(op)?
        );
        render_plan(
            &op.op().plan(&content),
            900 + k,
            &content,
            &bodies,
            &mut s,
            dir,
        )?;
    }
    let _ = writeln!(s, "done");
    let _ = writeln!(
        s,
        "echo \"Raw history above. Verdict (exit 1 = race reproduced): ocidiff race --replay $HERE/race.toml --target {target}=$REGISTRY\""
    );
    Ok(s)
}
