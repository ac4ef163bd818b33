//! The compare stage: two oracles over a `CaseOutcome`, every difference classified by the rule
//! table (`rules`).
//!
//! 1. **Model expectation.** The ops are walked with a `ModelState`; before each op is applied,
//!    the op's family says what a spec-exact registry must answer to each of its exchanges
//!    (`Operation::expect`), checked on *every* target, the reference (target 0) included. A
//!    reference that disagrees with the model means the harness or the reference is wrong: it
//!    is reported as a violation on the reference, never hidden.
//! 2. **Differential** (`differential`). Each target is compared with the reference exchange by
//!    exchange. Anything the model accepted on both sides but that still differs is a
//!    `Variation`.
//!
//! **Cascade suppression (taint).** Once a target diverged on an op that changes state (a failed
//! push, a declined mount, ...), its state no longer matches the model, so later ops touching the
//! same symbols would diverge too. After any divergence on a state-changing op, the symbols the
//! op writes (its `Footprint`) are tainted *for that target*; later ops that read a tainted
//! symbol are not checked on that target, and their writes are tainted as well. A tainted
//! reference suppresses the differential comparison (not the model check) of every target.
//! Where the spec is silent about the state an op leaves (a failed upload completion), the
//! model marks it uncertain: ops reading it get no model check, only the differential one.
//!
//! The catalog is not in the spec: it is never a violation.

pub mod cause;
pub mod differential;
pub mod divergence;
pub mod not_rules;
pub mod race;
pub mod rule_versions;
pub mod rules;

pub use cause::{symptom_of, Cause};
pub use divergence::{Divergence, Signature};
pub use rule_versions::{rule_in, VersionedRule};
pub use rules::{
    rule, Class, Level, Rule, SpecVersion, LEGACY_ERROR_CODES, RULES, SPEC_ERROR_CODES,
};

use crate::model::ModelState;
use crate::ops::expect::{Exp, ExpectCx, Found, TargetFacts, TargetMemo, QUIET};
use crate::ops::{Op, Sequence, Sym};
use crate::vocab::content::Content;
use crate::vocab::exchange::{BodyFacts, CaseOutcome, Exchange};
use std::collections::BTreeSet;

fn tainted(set: &BTreeSet<Sym>, reads: &[Sym]) -> bool {
    reads.iter().any(|r| match r {
        Sym::BlobAny(b) => set.iter().any(|s| matches!(s, Sym::Blob(_, b2) if b2 == b)),
        other => set.contains(other),
    })
}

/// Whether a divergence in this field means the target's state may differ from the model's
/// (a different status or a missing step; an `OCI-Tag` mismatch means other tags were created).
pub(crate) fn changes_state(field: &str) -> bool {
    field == "status" || field.starts_with("exchange:") || field == "header:oci-tag"
}

/// `<ns>` of a URL whose path is `/v2/<ns>/r<k>/...`.
fn namespace_of(url: &str) -> Option<String> {
    let path = url::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_else(|_| url.to_string());
    let rest = path.split("/v2/").nth(1)?;
    let mut parts = rest.split('/');
    let ns = parts.next()?;
    let repo = parts.next()?;
    (repo.starts_with('r') && repo[1..].chars().all(|c| c.is_ascii_digit()) && repo.len() > 1)
        .then(|| ns.to_string())
}

/// Per-target facts gathered from the whole case before checking.
fn target_facts(seq: &Sequence, outcome: &CaseOutcome, t: usize) -> TargetFacts {
    facts_of(seq.ops.iter().zip(&outcome.ops).flat_map(|(op, o)| {
        o.per_target
            .get(t)
            .into_iter()
            .flatten()
            .map(move |ex| (op, ex))
    }))
}

/// [`target_facts`] of any exchanges of one target, with the op that sent each.
pub(crate) fn facts_of<'a>(exchanges: impl Iterator<Item = (&'a Op, &'a Exchange)>) -> TargetFacts {
    let mut f = TargetFacts::default();
    {
        for (op, ex) in exchanges {
            let seen = if ex.endpoint.starts_with("end-12") {
                Some(&mut f.referrers)
            } else if ex.endpoint.starts_with("end-8") {
                Some(&mut f.tags)
            } else {
                None
            };
            if let Some(seen) = seen {
                match ex.observation.status {
                    200 => *seen = Some(true),
                    404 if seen.is_none() => *seen = Some(false),
                    _ => {}
                }
            }
            // A valid manifest accepted (a malformed one accepted says nothing of pushing).
            if matches!(op, Op::PushManifest(_))
                && ex.endpoint.starts_with("end-7")
                && ex.observation.status == 201
            {
                f.pushes = true;
            }
            if f.namespace.is_none() {
                f.namespace = namespace_of(&ex.request.url);
            }
        }
    }
    f
}

/// What one exchange showed against its expectation.
#[derive(Default)]
struct Judged {
    found: Vec<Found>,
    /// The answer left the target's state off the model's (a status outside `ok` that the
    /// plan does not make good, or a step that could not be sent).
    off_model: bool,
}

/// Judges one exchange. On the reference, every answer outside `ok` is reported (it is the
/// oracle: it must answer as the model does), even a quiet one.
fn eval(exp: &Exp, ex: &Exchange, is_reference: bool) -> Judged {
    let o = &ex.observation;
    let s = o.status;
    let mut j = Judged::default();
    if o.is_skipped() {
        // The executor could not send it (an earlier step failed): a consequence, not a
        // finding, but the op did not do what the model assumes.
        j.off_model = true;
        return j;
    }
    if s == 0 && exp.tolerate_transport {
        return j;
    }
    if s == 0 {
        // No answer: under the exchange's MUST when it has one, else HTTP semantics.
        let rule = if rule(exp.fail).level == Level::Must {
            exp.fail
        } else {
            "http/transport"
        };
        j.found.push(Found::new(
            "status",
            rule,
            format!(
                "{} {}: no HTTP response ({})",
                ex.request.method,
                ex.endpoint,
                o.transport_error.as_deref().unwrap_or("")
            ),
            exp.ok_text(),
            o.field_value("status"),
        ));
        j.off_model = true;
        return j;
    }
    if !exp.is_ok(s) {
        j.off_model = !exp.continues.contains(&s);
        let r = match exp.rule_for(s) {
            QUIET if is_reference => Some("model/reference"),
            QUIET => None,
            r => Some(r),
        };
        if let Some(r) = r {
            j.found.push(Found::new(
                "status",
                r,
                format!(
                    "{} {} answered {s}, expected {}",
                    ex.request.method,
                    ex.endpoint,
                    exp.ok_text()
                ),
                exp.ok_text(),
                s.to_string(),
            ));
        }
    }
    for (lo, hi, check) in &exp.checks {
        if (*lo..=*hi).contains(&s) {
            check.eval(o, &mut j.found);
        }
    }
    if let Some(e) = o
        .transport_error
        .as_deref()
        .filter(|e| e.starts_with(crate::observe::BODY_READ_ERROR) && !exp.tolerate_transport)
    {
        // An answer whose body breaks off (fewer bytes than its `Content-Length`, a reset
        // mid-body): every client sees a broken connection, whatever the status said.
        j.found.push(Found::new(
            "body",
            "http/transport",
            format!(
                "{} {} answered {s}, then its body broke off ({e})",
                ex.request.method, ex.endpoint
            ),
            "a complete body",
            e.to_string(),
        ));
    }
    generic_checks(ex, &mut j.found);
    if (400..500).contains(&s) {
        if let BodyFacts::Other { json: true, .. } = &o.body {
            j.found.push(Found::body(
                "errors/json-format",
                format!(
                    "a JSON error body without an `errors` list of `code`s: {}",
                    o.body.describe()
                ),
                "{\"errors\": [{\"code\": ...}]}",
                o.body.describe(),
            ));
        }
        if let BodyFacts::Errors { codes } = &o.body {
            let known = |c: &str| SPEC_ERROR_CODES.contains(&c) || LEGACY_ERROR_CODES.contains(&c);
            if let Some(bad) = codes.iter().find(|c| !known(c)) {
                j.found.push(Found::body(
                    "errors/code",
                    format!("error code {bad} is not one of the spec's codes"),
                    "one of code-1 ... code-14",
                    bad.clone(),
                ));
            }
        }
    }
    j
}

/// Checks every answer gets, whatever the op: the `Warning` headers' format and size; the
/// `Link` of a tag list or referrers answer.
fn generic_checks(ex: &Exchange, found: &mut Vec<Found>) {
    let o = &ex.observation;
    let link_rule = match ex.endpoint.as_str() {
        "end-8a" | "end-8b" => Some("end-8b/link-format"),
        "end-12a" | "end-12b" => Some("end-12a/link-format"),
        _ => None,
    };
    if let (Some(rule), Some(link)) = (link_rule, o.header("link")) {
        // `observe` writes a parsed Link as `<url>; rel="..."` (and `link-form`); an
        // unparseable one stays raw, without `link-form`.
        let parsed = o.header("link-form").is_some();
        let next = crate::observe::parse_link(link).iter().any(|(_, rel)| {
            rel.as_deref()
                .is_some_and(|v| v.split_whitespace().any(|t| t.eq_ignore_ascii_case("next")))
        });
        if !parsed || !next {
            found.push(Found::new(
                "header:link",
                rule,
                format!("Link {link:?} is not an RFC 5988 link with rel=\"next\""),
                "<url>; rel=\"next\"",
                link,
            ));
        }
    }
    let Some(w) = o.header("warning") else {
        return;
    };
    if !warning_format_ok(w) {
        found.push(Found::new(
            "header:warning",
            "warning/format",
            format!("Warning {w:?} is not `299 - \"<text>\"`"),
            "299 - \"<text>\"",
            w,
        ));
    }
    if w.len() > 4096 {
        found.push(Found::new(
            "header:warning",
            "warning/size",
            format!("{} bytes of Warning headers", w.len()),
            "at most 4096 bytes",
            w.len().to_string(),
        ));
    }
}

/// `299 - "<text>"`, comma-separated when there are several (the joined form `observe` keeps);
/// no `warn-date`.
pub fn warning_format_ok(v: &str) -> bool {
    let mut rest = v.trim();
    loop {
        let Some(r) = rest.strip_prefix("299 - \"") else {
            return false;
        };
        // The quoted text, with backslash escapes.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in r.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else { return false };
        rest = r[end + 1..].trim_start();
        if rest.is_empty() {
            return true;
        }
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None => return false,
        }
    }
}

/// What the model oracle found on one op of one target.
#[derive(Default)]
pub(crate) struct OpJudgement {
    /// Each finding with the index of the exchange it is about.
    pub found: Vec<(usize, Found)>,
    /// An exchange tolerated a dropped connection (the next op may meet it).
    pub drops: bool,
    /// The target's state may no longer be the model's after this op.
    pub off_model: bool,
    /// The op's checks found something, but there is no exchange to pin it on.
    pub diverged_unplaced: bool,
}

/// The model oracle on one op of one target: every exchange against the op family's
/// expectation in state `st`, then the op's own checks over all of them. The one judge of an
/// op, used by the sequential walk (`check_case`) and by the linearizability search
/// (`race`), which tries it in many states.
#[allow(clippy::too_many_arguments)]
pub(crate) fn judge_op(
    o: &dyn crate::ops::Operation,
    st: &ModelState,
    content: &Content,
    facts: &TargetFacts,
    memo: &mut TargetMemo,
    is_reference: bool,
    exs: &[Exchange],
    after_drop: bool,
) -> OpJudgement {
    let mut j = OpJudgement::default();
    memo.op_chunk_min = None;
    memo.op_undefined = false;
    let mut cx = ExpectCx {
        st,
        content,
        facts,
        is_reference,
        sent: 0,
        memo,
    };
    for (k, ex) in exs.iter().enumerate() {
        if after_drop && ex.observation.status == 0 {
            continue;
        }
        let Some(exp) = o.expect(&mut cx, ex) else {
            continue;
        };
        j.drops |= exp.tolerate_transport;
        let e = eval(&exp, ex, is_reference);
        j.off_model |= e.off_model;
        j.found.extend(e.found.into_iter().map(|f| (k, f)));
    }
    let op_found = o.check_op(&cx, exs);
    match exs.len().checked_sub(1) {
        Some(last) => j.found.extend(op_found.into_iter().map(|f| (last, f))),
        None => j.diverged_unplaced = !op_found.is_empty(),
    }
    j
}

/// Runs both oracles over one case. Output order is deterministic (op, target, label order).
pub fn check_case(seq: &Sequence, content: &Content, outcome: &CaseOutcome) -> Vec<Divergence> {
    let nt = outcome.targets.len();
    let facts: Vec<TargetFacts> = (0..nt).map(|t| target_facts(seq, outcome, t)).collect();
    let mut taint: Vec<BTreeSet<Sym>> = vec![BTreeSet::new(); nt];
    // Per target: the previous op may have left a dropped connection behind (an oversized
    // manifest answered early), so a transport error on this op is not the target's fault.
    let mut after_drop = vec![false; nt];
    let mut memo: Vec<TargetMemo> = vec![TargetMemo::default(); nt];
    let mut st = ModelState::new();
    st.learn(content);
    let mut out = Vec::new();
    let empty: Vec<Exchange> = Vec::new();

    for (i, op) in seq.ops.iter().enumerate() {
        let o = op.op();
        let fp = o.footprint(&st, content);
        let exs_of = |t: usize| -> &Vec<Exchange> {
            outcome
                .ops
                .get(i)
                .and_then(|o| o.per_target.get(t))
                .unwrap_or(&empty)
        };
        let model_silent = fp
            .reads
            .iter()
            .any(|r| matches!(r, Sym::Session(s) if st.session_uncertain(*s)));
        let mut drops = false;
        let mut diverged = vec![false; nt];
        let mut skipped = vec![false; nt];
        let mut state_diverged = vec![false; nt];
        for t in 0..nt {
            if tainted(&taint[t], &fp.reads) {
                skipped[t] = true;
                continue;
            }
            if model_silent {
                continue;
            }
            let exs = exs_of(t);
            let j = judge_op(
                o,
                &st,
                content,
                &facts[t],
                &mut memo[t],
                t == 0,
                exs,
                after_drop[t],
            );
            drops |= j.drops;
            state_diverged[t] |= j.off_model;
            diverged[t] |= j.diverged_unplaced;
            for (k, f) in j.found {
                diverged[t] = true;
                state_diverged[t] |= changes_state(&f.field);
                out.push(make(outcome, t, i, &exs[k], f, exs_of(0)));
            }
        }
        // Differential: each target against the reference.
        if nt > 1 && !skipped[0] && !diverged[0] {
            for t in 1..nt {
                if skipped[t] || diverged[t] {
                    continue;
                }
                let tolerate = drops || after_drop[0] || after_drop[t];
                for (label, f) in differential::differential(exs_of(0), exs_of(t), tolerate) {
                    diverged[t] = true;
                    state_diverged[t] |= changes_state(&f.field);
                    let ex = exs_of(t)
                        .iter()
                        .find(|e| e.label == label)
                        .or_else(|| exs_of(0).iter().find(|e| e.label == label));
                    if let Some(ex) = ex {
                        out.push(make(outcome, t, i, ex, f, exs_of(0)));
                    }
                }
            }
        }
        if fp.mutating() {
            for t in 0..nt {
                if state_diverged[t] || skipped[t] {
                    taint[t].extend(fp.writes.iter().copied());
                }
            }
        }
        after_drop = vec![drops; nt];
        o.apply(&mut st, content);
    }
    out
}

fn make(
    outcome: &CaseOutcome,
    t: usize,
    op_index: usize,
    ex: &Exchange,
    f: Found,
    ref_exs: &[Exchange],
) -> Divergence {
    // A target is judged by the version it claims; the reference, the oracle, by the model
    // (main), since any disagreement of it with the model is ocidiff's bug.
    let v = rule_in(f.rule, outcome.version_of(t));
    let r = v.rule;
    let target = outcome
        .targets
        .get(t)
        .cloned()
        .unwrap_or_else(|| format!("target{t}"));
    // The catalog is not in the spec: never a violation, not even on the reference.
    let (class, summary) = if t == 0 && r.endpoint == "catalog" {
        (r.class, format!("reference: {}", f.summary))
    } else if t == 0 && r.class != Class::Violation {
        (
            Class::Violation,
            format!(
                "reference disagrees with the model ({} rule {}): {}",
                r.class, r.id, f.summary
            ),
        )
    } else if t == 0 {
        (
            Class::Violation,
            format!("reference disagrees with the model: {}", f.summary),
        )
    } else {
        (v.class, f.summary)
    };
    let spec = if t == 0 {
        r.spec.to_string()
    } else {
        v.quote()
    };
    let reference = (t != 0)
        .then(|| {
            ref_exs
                .iter()
                .find(|e| e.label == ex.label)
                .map(|e| e.observation.field_value(&f.field))
        })
        .flatten();
    Divergence {
        class,
        target,
        op_index,
        label: ex.label.clone(),
        endpoint: ex.endpoint.clone(),
        field: f.field,
        rule: r.id.to_string(),
        spec,
        summary,
        expected: f.expected,
        actual: f.actual,
        reference,
        spec_version: v.version,
    }
}

#[cfg(test)]
mod tests;
