//! The verdict at the end of a `repro.sh`: the diverging exchange's field, read from the new
//! response in the same normalized form the harness records, against what the target answered
//! when the finding was made.
//!
//! Exit codes: `1` the divergence reproduces (the field reads as it did, or for a status, it is
//! outside what the oracle allowed); `0` it does not (the field now reads otherwise, or the
//! registry no longer even reaches the diverging exchange); `2` the script cannot judge (no
//! curl, the registry never answered, nothing recorded to compare with).
//!
//! Names are per run (`$NS` in the script, `ocidiff<run>c<case>...` when the finding was made):
//! both sides write their namespace as `<ns>` before comparing.

use crate::shrink::Finding;
use crate::vocab::exchange::{BodyFacts, Exchange};
use std::fmt::Write as _;

/// The recorded side of the verdict.
#[derive(Debug, PartialEq, Eq)]
pub struct Probe {
    /// `status`, `header:<name>` or `body`.
    pub field: String,
    /// The field as the target answered it, normalized (see the `probe_*` bash functions).
    pub recorded: String,
    /// For a status: the statuses the oracle allowed (`lo-hi` ranges), when it said.
    pub allowed: Vec<(u16, u16)>,
}

/// The namespace of the run a finding's outcome comes from (the first `/v2/<ns>/` of its
/// requests).
fn recorded_namespace(f: &Finding) -> Option<String> {
    let o = f.outcome.as_ref()?;
    o.ops
        .iter()
        .flat_map(|op| op.per_target.iter().flatten())
        .find_map(|ex| {
            let path = ex.request.url.split("/v2/").nth(1)?;
            let ns = path.split('/').next()?;
            ns.starts_with("ocidiff").then(|| ns.to_string())
        })
}

/// The diverging exchange as the target answered it.
fn recorded_exchange(f: &Finding) -> Option<&Exchange> {
    let d = &f.divergence;
    let o = f.outcome.as_ref()?;
    let t = o.targets.iter().position(|n| *n == d.target)?;
    o.ops
        .get(d.op_index)?
        .per_target
        .get(t)?
        .iter()
        .find(|x| x.label == d.label)
}

/// Statuses written as the oracle writes them (`201/202`, `400-499`).
fn parse_allowed(text: &str) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for part in text.split('/') {
        let range = match part.split_once('-') {
            Some((lo, hi)) => lo.trim().parse().ok().zip(hi.trim().parse().ok()),
            None => part.trim().parse().ok().map(|s| (s, s)),
        };
        match range {
            Some(r) => out.push(r),
            None => return Vec::new(),
        }
    }
    out
}

/// The recorded side of `f`'s verdict; `None` when the finding holds no observation of its
/// diverging exchange.
pub fn probe(f: &Finding) -> Option<Probe> {
    let d = &f.divergence;
    let ex = recorded_exchange(f)?;
    let o = &ex.observation;
    let ns = recorded_namespace(f).unwrap_or_else(|| "\u{0}".into());
    let norm = |s: &str| s.replace(&ns, "<ns>");
    let (recorded, allowed) = if d.field == "status" {
        let s = if o.status == 0 {
            String::new()
        } else {
            o.status.to_string()
        };
        (s, parse_allowed(&d.expected))
    } else if let Some(name) = d.field.strip_prefix("header:") {
        let v = match (name, o.header(name)) {
            (_, None) => "<absent>".to_string(),
            ("link", Some(_)) => "<present>".to_string(),
            (_, Some(v)) => norm(v),
        };
        (v, Vec::new())
    } else if d.field == "body" {
        (body_facts(&o.body, &ns), Vec::new())
    } else {
        return None;
    };
    Some(Probe {
        field: d.field.clone(),
        recorded,
        allowed,
    })
}

/// A body as the bash `probe_body` writes it.
fn body_facts(b: &BodyFacts, ns: &str) -> String {
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v.join(",")
    };
    match b {
        BodyFacts::Empty => "empty".into(),
        BodyFacts::Content { sha256, .. } => format!("content {}", strip(sha256)),
        BodyFacts::Errors { codes } => format!("errors {}", codes.join(",")),
        BodyFacts::Tags { name, tags } => {
            format!("tags {} {}", name.replace(ns, "<ns>"), tags.join(","))
        }
        BodyFacts::Referrers { manifests } => {
            let digests = sorted(manifests.iter().map(|m| m.digest.clone()).collect());
            let types = sorted(
                manifests
                    .iter()
                    .filter_map(|m| m.artifact_type.clone())
                    .collect(),
            );
            let notes = sorted(
                manifests
                    .iter()
                    .flat_map(|m| m.annotations.iter())
                    .map(|(k, v)| format!("\"{k}\":\"{v}\""))
                    .collect(),
            );
            format!("referrers {digests} {types} {notes}")
        }
        BodyFacts::Catalog { repositories } => {
            let prefix = format!("{ns}/");
            let mine: Vec<&str> = repositories
                .iter()
                .filter_map(|r| r.strip_prefix(&prefix))
                .collect();
            format!("catalog {}", mine.join(","))
        }
        BodyFacts::Other { .. } => "other".into(),
    }
}

fn strip(s: &str) -> &str {
    s.strip_prefix("sha256:").unwrap_or(s)
}

/// How the new body is read: as raw content (its sha256) or as JSON of one of the kinds.
fn body_mode(b: &BodyFacts) -> &'static str {
    match b {
        BodyFacts::Empty | BodyFacts::Content { .. } => "content",
        _ => "json",
    }
}

/// Bash functions reading the diverging response (`$WORK/div.head`, `$WORK/div.body`) the way
/// `observe` normalizes it.
const PROBE_HELPERS: &str = r#"
# --- verdict helpers: the diverging response, normalized as ocidiff records it
sha256of() { if command -v sha256sum >/dev/null; then sha256sum "$1" | cut -d' ' -f1; else shasum -a 256 "$1" | cut -d' ' -f1; fi; }
# hraw NAME: every value of header NAME in the last response head that has it, joined ", ".
hraw() {
  awk -v want="$(printf '%s' "$1" | tr 'A-Z' 'a-z')" '
    /^HTTP\// { if (n) { last = cur }; cur = ""; n = 0; next }
    { line = $0; sub(/\r$/, "", line); i = index(line, ":"); if (i == 0) next
      name = tolower(substr(line, 1, i - 1)); if (name != want) next
      v = substr(line, i + 1); gsub(/^[ \t]+|[ \t]+$/, "", v)
      cur = (n ? cur ", " : "") v; n++ }
    END { if (n) print cur; else if (last != "") print last }' "$WORK/div.head"
}
origin() { printf '%s' "$1" | sed -E 's#^(https?://[^/]+).*#\1#'; }
# urlform RAW: absolute (same origin), foreign (another) or relative.
urlform() {
  case "$1" in
    http://*|https://*) if [ "$(origin "$1")" = "$(origin "$DIVURL")" ]; then echo absolute; else echo foreign; fi ;;
    //*) echo foreign ;;
    *) echo relative ;;
  esac
}
# normloc RAW: the location without the request's own origin, upload ids as <upload>, upload
# query values as <v>, the namespace as <ns>.
normloc() {
  local u="$1" o; o="$(origin "$DIVURL")"
  case "$u" in "$o"/*) u="${u#"$o"}" ;; /*|http://*|https://*) ;; *) local p="${DIVURL#"$o"}"; p="${p%%\?*}"; u="${p%/*}/$u" ;; esac
  case "$u" in
    */blobs/uploads/*) u="$(printf '%s' "$u" | sed -E -e 's#(/blobs/uploads/)[^/?]+#\1<upload>#' -e 's#=[^&]*#=<v>#g')" ;;
  esac
  printf '%s' "$u" | sed "s#$NS#<ns>#g"
}
probe_header() {
  local v
  case "$1" in
    content-type-essence) v="$(hraw content-type | cut -d';' -f1 | tr 'A-Z' 'a-z' | sed 's/[[:space:]]//g')" ;;
    location) v="$(hraw location | cut -d',' -f1)"; [ -z "$v" ] || v="$(normloc "$v")" ;;
    location-form) v="$(hraw location | cut -d',' -f1)"; [ -z "$v" ] || v="$(urlform "$v")" ;;
    link) v="$(hraw link)"; [ -z "$v" ] || v="<present>" ;;
    link-form) v="$(hraw link | grep -o '<[^>]*>' | tr -d '<>' | while read -r l; do urlform "$l"; done | paste -sd, - | sed 's/,/, /g')" ;;
    docker-upload-uuid) v="$(hraw docker-upload-uuid)"; [ -z "$v" ] || v="<present>" ;;
    location-session-id) v="$(hraw location | cut -d',' -f1)"
      case "$v" in
        *[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]*) v=uuid ;;
        */uploads/[!/?]*) v=opaque ;;
        ?*) v=none ;;
      esac ;;
    *) v="$(hraw "$1" | sed "s#$NS#<ns>#g")" ;;
  esac
  if [ -z "$v" ]; then echo '<absent>'; else echo "$v"; fi
}
# jlist KEY: the string values of KEY in the flattened body, in order.
jlist() { tr -d ' \n\r\t' < "$WORK/div.body" | grep -o "\"$1\":\"[^\"]*\"" | sed -e "s/^\"$1\":\"//" -e 's/"$//'; }
# jarray KEY: the strings of the array KEY in the flattened body, in order.
jarray() { tr -d ' \n\r\t' < "$WORK/div.body" | sed -n "s/.*\"$1\":\[\([^]]*\)\].*/\1/p" | tr ',' '\n' | sed -e 's/^"//' -e 's/"$//' | grep -v '^$'; }
probe_body() {
  local flat; flat="$(tr -d ' \n\r\t' < "$WORK/div.body")"
  if [ "$1" = content ]; then
    if [ ! -s "$WORK/div.body" ]; then echo empty; else echo "content $(sha256of "$WORK/div.body")"; fi
    return
  fi
  case "$flat" in
    *'"errors":'*) echo "errors $(jlist code | paste -sd, -)" ;;
    *'"tags":'*) echo "tags $(jlist name | head -n1 | sed "s#$NS#<ns>#g") $(jarray tags | paste -sd, -)" ;;
    *'"repositories":'*) echo "catalog $(jarray repositories | grep "^$NS/" | sed "s#^$NS/##" | paste -sd, -)" ;;
    *'"manifests":'*)
      local notes; notes="$(printf '%s' "$flat" | grep -o '"annotations":{[^}]*}' | sed -e 's/^"annotations":{//' -e 's/}$//' | tr ',' '\n' | grep -v '^$' | sort | paste -sd, -)"
      echo "referrers $(jlist digest | sort | paste -sd, -) $(jlist artifactType | sort | paste -sd, -) $notes" ;;
    *) echo other ;;
  esac
}
"#;

/// The end of `f`'s reproducer: run the verdict and exit 1 / 0 / 2.
pub fn render_verdict(f: &Finding) -> String {
    let d = &f.divergence;
    let mut s = String::from(PROBE_HELPERS);
    let what = format!(
        "{} {} at op #{} ({}), field {}",
        d.class, d.rule, d.op_index, d.label, d.field
    );
    let _ = writeln!(s, "\n# --- verdict: {}", what.replace('\n', " "));
    let _ = writeln!(
        s,
        "WHAT={}",
        super::repro::shq(&format!(
            "{what}: expected {}, {} answered {}",
            d.expected, d.target, d.actual
        ))
    );
    let _ = writeln!(
        s,
        "if [ \"$ANSWERED\" = 0 ]; then echo \"CANNOT RUN: $REGISTRY never answered\" >&2; exit 2; fi"
    );
    let _ = writeln!(
        s,
        "if [ \"$REACHED\" = 0 ]; then echo \"NOT REPRODUCED: the diverging exchange was not reached (an earlier answer changed) -- $WHAT\"; exit 0; fi"
    );
    let Some(p) = probe(f) else {
        let _ = writeln!(
            s,
            "echo 'CANNOT JUDGE: the finding holds no recorded answer to compare with' >&2; exit 2"
        );
        return s;
    };
    let _ = writeln!(s, "RECORDED={}", super::repro::shq(&p.recorded));
    let mut repro_if = String::from("[ \"$OBS\" = \"$RECORDED\" ]");
    if p.field == "status" {
        let _ = writeln!(s, "OBS=\"$DIVSTATUS\"");
        if !p.allowed.is_empty() {
            let inside: Vec<String> = p
                .allowed
                .iter()
                .map(|(lo, hi)| format!("{{ [ \"$OBS\" -ge {lo} ] && [ \"$OBS\" -le {hi} ]; }}"))
                .collect();
            let _ = writeln!(
                s,
                "ALLOWED=0; if [ -n \"$OBS\" ] && {{ {}; }}; then ALLOWED=1; fi",
                inside.join(" || ")
            );
            repro_if = "[ \"$OBS\" = \"$RECORDED\" ] || [ \"$ALLOWED\" = 0 ]".into();
        }
    } else if let Some(name) = p.field.strip_prefix("header:") {
        let _ = writeln!(s, "OBS=\"$(probe_header {})\"", super::repro::shq(name));
    } else {
        let mode = recorded_exchange(f)
            .map(|ex| body_mode(&ex.observation.body))
            .unwrap_or("json");
        let _ = writeln!(s, "OBS=\"$(probe_body {mode})\"");
    }
    let _ = writeln!(
        s,
        "if {repro_if}; then\n  echo \"REPRODUCED: $WHAT\"; echo \"  {field} now: ${{OBS:-<none>}}\"; exit 1\nelse\n  echo \"NOT REPRODUCED: {field} now reads ${{OBS:-<none>}} (was $RECORDED) -- $WHAT\"; exit 0\nfi",
        field = p.field
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_statuses_parse_as_the_oracle_writes_them() {
        assert_eq!(parse_allowed("201/202"), vec![(201, 201), (202, 202)]);
        assert_eq!(parse_allowed("400-499"), vec![(400, 499)]);
        assert!(parse_allowed("[] without Link").is_empty());
    }

    #[test]
    fn bodies_are_written_namespace_free() {
        let ns = "ocidiffabc1c3";
        let tags = BodyFacts::Tags {
            name: format!("{ns}/r1"),
            tags: vec!["b".into(), "a".into()],
        };
        assert_eq!(body_facts(&tags, ns), "tags <ns>/r1 b,a");
        let cat = BodyFacts::Catalog {
            repositories: vec![format!("{ns}/r2"), "other/r1".into(), format!("{ns}/r1")],
        };
        assert_eq!(body_facts(&cat, ns), "catalog r2,r1");
        let errs = BodyFacts::Errors {
            codes: vec!["UNKNOWN".into()],
        };
        assert_eq!(body_facts(&errs, ns), "errors UNKNOWN");
        assert_eq!(body_mode(&errs), "json");
        assert_eq!(body_mode(&BodyFacts::Empty), "content");
    }
}
