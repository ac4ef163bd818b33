//! Evaluating a scenario's `[[expect]]` checks (and the oracle's divergences) per target, with
//! outcomes `pass` / `fail` / `warn` / `skip` / `info`.
//!
//! - A check's level is `level`, else its `rule`'s class (violation -> must, variation -> should,
//!   unsupported -> may), else `must`. A failed `must` check is `fail`; a failed `should` / `may`
//!   check is `warn`.
//! - A status listed in `unsupported` (an optional API declined: 405 on delete, 404 on referrers,
//!   202 on a single POST or a mount) makes the check `skip` (unsupported), as does a `requires`
//!   naming a check that did not pass (a warning counts as not passed), or an exchange that was never sent because an earlier step
//!   failed (that step's own check carries the failure).
//! - The oracle's divergences on the target are attached to the failed check of the same op and
//!   exchange when there is one; otherwise they become checks of their own: violations `fail`,
//!   unsupported `skip`, variations `info` (allowed differences; shown, never counted as failures).

use crate::compare::{Class, Divergence};
use crate::scenario::{Expect, Level, Scenario};
use crate::vocab::content::{sha256_hex, Content};
use crate::vocab::exchange::{BodyFacts, Exchange, ReferrerFacts};
use crate::vocab::redact::redact;
use crate::vocab::spec_version::SpecVersion;
use crate::vocab::{BlobId, ManifestId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The verdict of one check on one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Warn,
    Skip,
    Info,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Warn => "warn",
            Outcome::Skip => "skip",
            Outcome::Info => "info",
        })
    }
}

/// One check's result on one target, with the exchanges it looked at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    /// "expect" (a scenario check) or "oracle" (a divergence found by the oracle).
    pub source: String,
    pub level: Level,
    pub outcome: Outcome,
    pub op: usize,
    /// The op, as compact JSON.
    pub op_text: String,
    pub label: String,
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub spec: String,
    /// Why it failed / warned / was skipped ("" on pass).
    pub message: String,
    /// Each thing that did not hold, one sentence each (`message` joins them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// Oracle findings on the same exchange (rule: summary).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oracle: Vec<String>,
    /// The op's exchanges on this target (URLs redacted).
    pub exchanges: Vec<Exchange>,
}

/// pass / fail / warn / skip / info counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub skip: usize,
    pub info: usize,
}

impl Counts {
    pub fn of(checks: &[CheckResult]) -> Counts {
        let mut c = Counts::default();
        for r in checks {
            c.add(r.outcome);
        }
        c
    }
    pub fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Pass => self.pass += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Warn => self.warn += 1,
            Outcome::Skip => self.skip += 1,
            Outcome::Info => self.info += 1,
        }
    }
    pub fn merge(&mut self, o: &Counts) {
        self.pass += o.pass;
        self.fail += o.fail;
        self.warn += o.warn;
        self.skip += o.skip;
        self.info += o.info;
    }
}

/// The level a check runs at, under spec version `v` (an explicit `level` wins; else its
/// rule's class as `v` reads it).
pub fn level_of(e: &Expect, v: SpecVersion) -> Level {
    if let Some(l) = e.level {
        return l;
    }
    match e.rule.as_deref().map(|r| crate::compare::rule_in(r, v)) {
        Some(r) => match r.class {
            Class::Violation => Level::Must,
            Class::Variation => Level::Should,
            Class::Unsupported => Level::May,
        },
        None => Level::Must,
    }
}

/// Substitutes `{blob:N}`, `{manifest:N}`, `{blob-size:N}`, `{manifest-size:N}`,
/// `{manifest-type:N}` and `{repo:N}`; `escape` regex-escapes what is substituted.
pub fn substitute(v: &str, content: &Content, namespace: &str, escape: bool) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            out.push_str(after);
            return out;
        };
        let inner = &after[1..close];
        let value = inner.split_once(':').and_then(|(kind, n)| {
            let n: u16 = n.parse().ok()?;
            match kind {
                "blob" => content.blob_digest(BlobId(n)).map(str::to_string),
                "manifest" => content.manifest_digest(ManifestId(n)).map(str::to_string),
                "blob-size" => content.blob(BlobId(n)).map(|b| b.len().to_string()),
                "manifest-size" => content.manifest(ManifestId(n)).map(|b| b.len().to_string()),
                "manifest-type" => content
                    .manifest_media_type(ManifestId(n))
                    .map(str::to_string),
                "repo" => Some(format!("{namespace}/r{n}")),
                _ => None,
            }
        });
        match value {
            Some(v) if escape => out.push_str(&regex::escape(&v)),
            Some(v) => out.push_str(&v),
            None => out.push_str(&after[..=close]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn body_kind(b: &BodyFacts) -> &'static str {
    match b {
        BodyFacts::Empty => "empty",
        BodyFacts::Content { .. } => "content",
        BodyFacts::Errors { .. } => "errors",
        BodyFacts::Tags { .. } => "tags",
        BodyFacts::Referrers { .. } => "referrers",
        BodyFacts::Catalog { .. } => "catalog",
        BodyFacts::Other { .. } => "other",
    }
}

/// The exchanges with URLs redacted.
fn redacted(exs: &[Exchange]) -> Vec<Exchange> {
    exs.iter()
        .map(|x| {
            let mut x = x.clone();
            x.request.url = redact(&x.request.url);
            x
        })
        .collect()
}

/// Everything that does not hold, as human-readable sentences.
fn failures(
    e: &Expect,
    ex: &Exchange,
    all: &[Exchange],
    content: &Content,
    ns: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    let o = &ex.observation;
    if let (0, Some(err)) = (o.status, &o.transport_error) {
        out.push(format!("no HTTP response: {err}"));
        return out;
    }
    if !e.status.is_empty() && !e.status.contains(&o.status) {
        out.push(format!("status {} (expected {:?})", o.status, e.status));
    }
    for (k, v) in &e.headers {
        let want = substitute(v, content, ns, false);
        let got = o.headers.get(&k.to_ascii_lowercase());
        if got != Some(&want) {
            out.push(format!(
                "header {k}: {} (expected {want:?})",
                got.map(|g| format!("{g:?}"))
                    .unwrap_or_else(|| "absent".into())
            ));
        }
    }
    for k in &e.present {
        if !o.headers.contains_key(&k.to_ascii_lowercase()) {
            out.push(format!("header {k} absent (expected present)"));
        }
    }
    for k in &e.absent {
        if let Some(v) = o.headers.get(&k.to_ascii_lowercase()) {
            out.push(format!("header {k}: {v:?} (expected absent)"));
        }
    }
    let optional = e.matches_if_present.iter().map(|m| (m, true));
    for ((k, re), if_present) in e.matches.iter().map(|m| (m, false)).chain(optional) {
        let pattern = substitute(re, content, ns, true);
        let got = o.headers.get(&k.to_ascii_lowercase());
        let ok = match (regex::Regex::new(&pattern), got) {
            (Ok(r), Some(g)) => r.is_match(g),
            (Ok(_), None) => if_present,
            _ => false,
        };
        if !ok {
            out.push(format!(
                "header {k}: {} (expected to match /{pattern}/)",
                got.map(|g| format!("{g:?}"))
                    .unwrap_or_else(|| "absent".into())
            ));
        }
    }
    if let Some(min) = e.min_exchanges {
        if all.len() < min {
            out.push(format!("{} exchanges (expected at least {min})", all.len()));
        }
    }
    if let Some(b) = &e.body {
        let kind = body_kind(&o.body);
        if let Some(k) = &b.kind {
            if k != kind {
                out.push(format!("body kind {kind} (expected {k})"));
            }
        }
        let content_facts = match &o.body {
            BodyFacts::Content { len, sha256 } | BodyFacts::Other { len, sha256, .. } => {
                Some((*len, sha256.trim_start_matches("sha256:").to_string()))
            }
            _ => None,
        };
        let mut want_bytes = |what: String, bytes: Option<&bytes::Bytes>| {
            let Some(bytes) = bytes else { return };
            let want = (bytes.len() as u64, sha256_hex(bytes));
            match &content_facts {
                Some(got) if *got == want => {}
                Some((len, sha)) => out.push(format!(
                    "body is not {what}: {len} bytes sha256:{} (expected {} bytes sha256:{})",
                    short(sha),
                    want.0,
                    short(&want.1)
                )),
                None => out.push(format!("body is not {what}: {kind} body")),
            }
        };
        if let Some(n) = b.blob {
            want_bytes(format!("blob {n}"), content.blob(BlobId(n)));
        }
        if let Some(n) = b.manifest {
            want_bytes(format!("manifest {n}"), content.manifest(ManifestId(n)));
        }
        if let Some((len, sha)) = &content_facts {
            if let Some(want) = &b.sha256 {
                if want.trim_start_matches("sha256:") != sha {
                    out.push(format!("body sha256:{sha} (expected {want})"));
                }
            }
            if let Some(want) = b.len {
                if want != *len {
                    out.push(format!("body length {len} (expected {want})"));
                }
            }
        } else if b.sha256.is_some() || b.len.is_some() {
            out.push(format!("{kind} body has no raw content to compare"));
        }
        if !b.error_codes.is_empty() {
            let codes = match &o.body {
                BodyFacts::Errors { codes } => codes.clone(),
                _ => Vec::new(),
            };
            for c in &b.error_codes {
                if !codes.contains(c) {
                    out.push(format!("error code {c} missing (got {codes:?})"));
                }
            }
        }
        if let Some(want) = &b.tags {
            match &o.body {
                BodyFacts::Tags { tags, .. } if tags == want => {}
                BodyFacts::Tags { tags, .. } => {
                    out.push(format!("tags {tags:?} (expected {want:?})"))
                }
                _ => out.push(format!("{kind} body (expected tags {want:?})")),
            }
        }
        if let Some(want) = &b.name {
            let want = substitute(want, content, ns, false);
            match &o.body {
                BodyFacts::Tags { name, .. } if *name == want => {}
                BodyFacts::Tags { name, .. } => {
                    out.push(format!("name {name:?} (expected {want:?})"))
                }
                _ => out.push(format!("{kind} body (expected a tag list named {want:?})")),
            }
        }
        if let Some(want) = &b.all_tags {
            let mut got = Vec::new();
            for x in all {
                if let BodyFacts::Tags { tags, .. } = &x.observation.body {
                    got.extend(tags.iter().cloned());
                }
            }
            if &got != want {
                out.push(format!(
                    "tags over all {} pages {got:?} (expected {want:?})",
                    all.len()
                ));
            }
        }
        // Referrers over every page the op followed (`Link`), like the tags of `all_tags`.
        let paged: Vec<ReferrerFacts>;
        let referrers = match &o.body {
            BodyFacts::Referrers { .. } if all.len() > 1 => {
                paged = all
                    .iter()
                    .filter_map(|x| match &x.observation.body {
                        BodyFacts::Referrers { manifests } => Some(manifests.iter().cloned()),
                        _ => None,
                    })
                    .flatten()
                    .collect();
                Some(&paged)
            }
            BodyFacts::Referrers { manifests } => Some(manifests),
            _ => None,
        };
        if let Some(want) = b.referrers {
            match referrers {
                Some(m) if m.len() == want => {}
                Some(m) => out.push(format!("{} referrers (expected {want})", m.len())),
                None => out.push(format!("{kind} body (expected a referrers index)")),
            }
        }
        if let Some(want) = &b.referrer_manifests {
            let mut want_d: Vec<String> = want
                .iter()
                .filter_map(|m| content.manifest_digest(ManifestId(*m)).map(str::to_string))
                .collect();
            want_d.sort();
            let mut got: Vec<String> = referrers
                .map(|m| m.iter().map(|r| r.digest.clone()).collect())
                .unwrap_or_default();
            got.sort();
            if got != want_d {
                out.push(format!(
                    "referrers {:?} (expected manifests {want:?} = {:?})",
                    got.iter().map(|d| short(d)).collect::<Vec<_>>(),
                    want_d.iter().map(|d| short(d)).collect::<Vec<_>>()
                ));
            }
        }
        if b.referrer_descriptors || b.referrer_annotations {
            let want: Vec<ReferrerFacts> = (0..content.manifest_count())
                .filter_map(|i| content.referrer_descriptor(ManifestId(i as u16)))
                .collect();
            for g in referrers.into_iter().flatten() {
                let Some(w) = want.iter().find(|w| w.digest == g.digest) else {
                    continue;
                };
                if b.referrer_descriptors && (g.media_type != w.media_type || g.size != w.size) {
                    out.push(format!(
                        "{} listed with mediaType {:?} / size {} (expected {:?} / {})",
                        short(&g.digest),
                        g.media_type,
                        g.size,
                        w.media_type,
                        w.size
                    ));
                }
                if b.referrer_annotations && g.annotations != w.annotations {
                    out.push(format!(
                        "{} listed with annotations {:?} (expected {:?})",
                        short(&g.digest),
                        g.annotations,
                        w.annotations
                    ));
                }
            }
        }
        if let Some(want) = &b.artifact_types {
            let mut got: Vec<String> = referrers
                .map(|m| {
                    m.iter()
                        .map(|r| r.artifact_type.clone().unwrap_or_default())
                        .collect()
                })
                .unwrap_or_default();
            got.sort();
            let mut want = want.clone();
            want.sort();
            if got != want {
                out.push(format!("artifactTypes {got:?} (expected {want:?})"));
            }
        }
    }
    out
}

fn short(d: &str) -> String {
    let (alg, hex) = d.split_once(':').unwrap_or(("", d));
    let h: String = hex.chars().take(12).collect();
    if alg.is_empty() {
        h
    } else {
        format!("{alg}:{h}")
    }
}

/// Evaluates every check of `sc` on every target of `outcome`, then folds in the oracle's
/// divergences. Returns one list per target (same order as `outcome.targets`).
pub fn evaluate(
    sc: &Scenario,
    content: &Content,
    outcome: &crate::vocab::exchange::CaseOutcome,
    namespace: &str,
    divergences: &[Divergence],
) -> Vec<Vec<CheckResult>> {
    let empty = Vec::new();
    let mut per_target = Vec::new();
    for (t, tname) in outcome.targets.iter().enumerate() {
        let mut results: Vec<CheckResult> = Vec::new();
        let mut by_name: BTreeMap<String, Outcome> = BTreeMap::new();
        let version = outcome.version_of(t);
        let mut undefined: std::collections::BTreeSet<&str> = Default::default();
        for e in &sc.expect {
            // A check of a behaviour this version does not define is not run under it
            // (referrers under 1.0, the final chunk's order and `?tag=` under 1.1, ...), nor
            // is a check that depends on one.
            if e.rule
                .as_deref()
                .is_some_and(|r| !crate::compare::rule_in(r, version).defined)
                || e.requires.iter().any(|r| undefined.contains(r.as_str()))
            {
                undefined.insert(e.name.as_str());
                continue;
            }
            let exs = outcome
                .ops
                .get(e.op)
                .and_then(|o| o.per_target.get(t))
                .unwrap_or(&empty);
            let r = evaluate_one(sc, e, exs, content, namespace, &by_name, version);
            by_name.insert(r.name.clone(), r.outcome);
            results.push(r);
        }
        // Fold in the oracle.
        for d in divergences.iter().filter(|d| &d.target == tname) {
            let note = format!("{} {}: {}", d.class, d.rule, d.summary);
            let attached = results.iter_mut().find(|r| {
                r.source == "expect"
                    && r.op == d.op_index
                    && (matches!(r.outcome, Outcome::Fail | Outcome::Warn)
                        || (r.outcome == Outcome::Skip && d.class == Class::Unsupported))
                    && (r.label == d.label || r.label == "<last>")
            });
            if let Some(r) = attached {
                r.oracle.push(note);
                continue;
            }
            let exs = outcome
                .ops
                .get(d.op_index)
                .and_then(|o| o.per_target.get(t))
                .unwrap_or(&empty);
            let (outcome, level) = match d.class {
                Class::Violation => (Outcome::Fail, Level::Must),
                Class::Unsupported => (Outcome::Skip, Level::May),
                Class::Variation => (Outcome::Info, Level::Should),
            };
            results.push(CheckResult {
                name: format!("oracle: {} (op {} {})", d.rule, d.op_index, d.label),
                source: "oracle".into(),
                level,
                outcome,
                op: d.op_index,
                op_text: op_text(sc, d.op_index),
                label: d.label.clone(),
                endpoint: d.endpoint.clone(),
                rule: Some(d.rule.clone()),
                spec: d.spec.clone(),
                message: format!(
                    "{} — expected {}, got {}{}",
                    d.summary,
                    d.expected,
                    d.actual,
                    d.reference
                        .as_ref()
                        .map(|r| format!(" (reference: {r})"))
                        .unwrap_or_default()
                ),
                oracle: Vec::new(),
                failures: Vec::new(),
                exchanges: redacted(exs),
            });
        }
        per_target.push(results);
    }
    per_target
}

fn op_text(sc: &Scenario, i: usize) -> String {
    sc.ops
        .get(i)
        .and_then(|o| serde_json::to_string(o).ok())
        .unwrap_or_default()
}

fn evaluate_one(
    sc: &Scenario,
    e: &Expect,
    exs: &[Exchange],
    content: &Content,
    ns: &str,
    earlier: &BTreeMap<String, Outcome>,
    version: SpecVersion,
) -> CheckResult {
    let level = level_of(e, version);
    let rule = e
        .rule
        .as_deref()
        .map(|r| crate::compare::rule_in(r, version));
    let ex = match &e.label {
        Some(l) => exs.iter().find(|x| x.label == *l),
        None => exs.last(),
    };
    let endpoint = e
        .endpoint
        .clone()
        .or_else(|| rule.map(|r| r.rule.endpoint.to_string()))
        .or_else(|| ex.map(|x| x.endpoint.clone()))
        .unwrap_or_else(|| "any".into());
    let spec = e
        .spec
        .clone()
        .or_else(|| rule.map(|r| r.quote()))
        .unwrap_or_default();
    let mut r = CheckResult {
        name: e.display_name(),
        source: "expect".into(),
        level,
        outcome: Outcome::Pass,
        op: e.op,
        op_text: op_text(sc, e.op),
        label: e.label.clone().unwrap_or_else(|| "<last>".into()),
        endpoint,
        rule: e.rule.clone(),
        spec,
        message: String::new(),
        failures: Vec::new(),
        oracle: Vec::new(),
        exchanges: redacted(exs),
    };
    if let Some((dep, o)) = e
        .requires
        .iter()
        .filter_map(|n| earlier.get(n).map(|o| (n, *o)))
        .find(|(_, o)| *o != Outcome::Pass)
    {
        r.outcome = Outcome::Skip;
        r.message = format!("skipped: depends on {dep:?}, which was {o}");
        return r;
    }
    let Some(ex) = ex else {
        if e.skip_if_absent {
            r.outcome = Outcome::Skip;
            r.message = format!(
                "skipped: no exchange {} (the op took another path)",
                r.label
            );
            return r;
        }
        r.outcome = fail_outcome(level);
        r.failures = vec![format!("exchange {} absent", r.label)];
        r.message = format!(
            "no exchange {} (the op stopped earlier: {})",
            r.label,
            exs.last()
                .map(|x| format!("{} answered {}", x.label, x.observation.status))
                .unwrap_or_else(|| "nothing sent".into())
        );
        return r;
    };
    if let Some(err) = &ex.observation.transport_error {
        if let Some(why) = err.strip_prefix("skipped: ") {
            r.outcome = Outcome::Skip;
            r.message = format!("skipped: request not sent ({why}; an earlier step failed)");
            return r;
        }
    }
    if e.unsupported.contains(&ex.observation.status) {
        r.outcome = Outcome::Skip;
        r.message = format!(
            "skip (unsupported): status {} — the registry declines this optional API",
            ex.observation.status
        );
        return r;
    }
    let f = failures(e, ex, exs, content, ns);
    if !f.is_empty() {
        r.outcome = fail_outcome(level);
        r.message = f.join("; ");
        r.failures = f;
    }
    r
}

fn fail_outcome(level: Level) -> Outcome {
    match level {
        Level::Must => Outcome::Fail,
        Level::Should | Level::May => Outcome::Warn,
    }
}
