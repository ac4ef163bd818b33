//! end-12a / end-12b: the referrers of a subject, unfiltered and filtered by `artifactType`.

use super::expect::{BodyCheck, Check, Exp, ExpectCx, Found};
use super::gen::{Draw, Transition, ARTIFACT_TYPES};
use super::manifest_push::with_dependencies;
use super::refs::is_sha512;
use super::{Footprint, Ids, Op, Operation, Renumber, Sym};
use crate::model::{classify_reference, reference_text, ModelState, RefKind};
use crate::vocab::content::{Content, OCI_INDEX};
use crate::vocab::exchange::{BodyFacts, Exchange, Observation, ReferrerFacts};
use crate::vocab::plan::{Method, Plan, Step, Url};
use crate::vocab::{ManifestId, Reference, Repo};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `GET /v2/<repo>/referrers/<subject>[?artifactType=]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListReferrers {
    pub repo: Repo,
    pub subject: Reference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

pub const TRANSITIONS: &[Transition] = &[Transition {
    name: "list_referrers",
    invalid: false,
    offer,
}];

/// The referrers of a stored subject; with none stored yet, a referrer is pushed instead.
fn offer(d: &mut Draw<'_>) -> Vec<Op> {
    let mut subjects = Vec::new();
    for r in d.st.repos() {
        for (_, m) in d.st.manifests(r) {
            if let Some(s) = d.content.manifest_subject(m) {
                subjects.push((r, s));
            }
        }
    }
    let (repo, subject) = match d.pick(&subjects) {
        Some(x) => x,
        None => {
            let referrers: Vec<ManifestId> = (0..d.content.manifest_count())
                .map(|i| ManifestId(i as u16))
                .filter(|m| d.content.manifest_subject(*m).is_some())
                .collect();
            match d.pick(&referrers) {
                Some(m) if !d.chance(1, 4) => {
                    let repo = d.repo();
                    return with_dependencies(d, repo, m);
                }
                _ => match d.pick(&d.stored_manifests()) {
                    Some((r, _, m)) => (r, m),
                    None => return Vec::new(),
                },
            }
        }
    };
    let artifact_type = if d.chance(1, 3) {
        let at: Vec<String> =
            d.st.referrers(repo, subject, None, d.content)
                .into_iter()
                .filter_map(|f| f.artifact_type)
                .collect();
        d.pick(&at)
            .or_else(|| d.pick(&ARTIFACT_TYPES).map(str::to_string))
    } else {
        None
    };
    vec![Op::ListReferrers(ListReferrers {
        repo,
        subject: Reference::Digest(subject),
        artifact_type,
    })]
}

/// A referrers response, checked against the model.
#[derive(Clone, Debug)]
pub struct ReferrersCheck {
    /// What a spec-exact registry lists (filtered when `filtered`).
    pub expected: Vec<ReferrerFacts>,
    pub unfiltered: Vec<ReferrerFacts>,
    pub filtered: bool,
    /// Digests of referrers that are indexes (the spec's MUST names image manifests only).
    pub indexes: Vec<String>,
}

fn describe(v: &[ReferrerFacts]) -> String {
    BodyFacts::Referrers {
        manifests: v.to_vec(),
    }
    .describe()
}

/// Each page: an image index (what it lists is judged over all pages, in `check_op`).
impl BodyCheck for ReferrersCheck {
    fn check(&self, o: &Observation, out: &mut Vec<Found>) {
        if !matches!(o.body, BodyFacts::Referrers { .. }) {
            out.push(Found::body(
                "end-12a/json",
                "referrers response is not an image index",
                "referrers index",
                o.body.describe(),
            ));
        }
    }
}

impl ReferrersCheck {
    /// The model's referrers of the op's subject, or `None` when the subject is no digest.
    fn of(op: &ListReferrers, st: &ModelState, content: &Content) -> Option<ReferrersCheck> {
        let RefKind::Digest(d) = classify_reference(&op.subject, content) else {
            return None;
        };
        let at = op.artifact_type.as_deref();
        let expected = st.referrers_by_digest(op.repo, &d, at, content);
        let unfiltered = st.referrers_by_digest(op.repo, &d, None, content);
        let indexes: Vec<String> = expected
            .iter()
            .chain(&unfiltered)
            .filter(|f| f.media_type == OCI_INDEX)
            .map(|f| f.digest.clone())
            .collect();
        Some(ReferrersCheck {
            expected,
            unfiltered,
            filtered: at.is_some(),
            indexes,
        })
    }

    /// The whole listing: every page followed through `Link` (`exs`, in order). Nothing to
    /// judge when a page failed (its status is judged per page) or the page limit cut the
    /// listing short.
    fn check_pages(&self, exs: &[Exchange], out: &mut Vec<Found>) {
        let mut got = Vec::new();
        for ex in exs {
            match &ex.observation.body {
                BodyFacts::Referrers { manifests } if ex.observation.status == 200 => {
                    got.extend(manifests.iter().cloned())
                }
                _ => return,
            }
        }
        match exs.last() {
            Some(last) if last.observation.header("link").is_none() => {}
            _ => return,
        }
        got.sort();
        // "If multiple filters are applied, the header MUST contain a comma separated list".
        let applied = exs[0]
            .observation
            .header("oci-filters-applied")
            .is_some_and(|h| h.split(',').any(|f| f.trim() == "artifactType"));
        self.judge(got, applied, out);
    }

    fn judge(&self, got: Vec<ReferrerFacts>, applied: bool, out: &mut Vec<Found>) {
        if self.filtered && !applied && self.unfiltered != self.expected {
            if got == self.unfiltered {
                out.push(Found::new(
                    "header:oci-filters-applied",
                    "end-12b/filter-not-applied",
                    "artifactType filter not applied",
                    "artifactType",
                    "<absent>",
                ));
                return;
            }
            if got == self.expected {
                out.push(Found::new(
                    "header:oci-filters-applied",
                    "end-12b/filters-applied-header",
                    "filtered response without OCI-Filters-Applied",
                    "artifactType",
                    "<absent>",
                ));
                return;
            }
        }
        if got == self.expected {
            return;
        }
        let by_digest = |v: &[ReferrerFacts], d: &str| v.iter().find(|x| x.digest == d).cloned();
        let found = |rule: &'static str, summary: String| {
            Found::body(rule, summary, describe(&self.expected), describe(&got))
        };
        for want in &self.expected {
            match by_digest(&got, &want.digest) {
                None if self.indexes.contains(&want.digest) => out.push(found(
                    "end-12a/missing-index",
                    format!("the index {} is not listed", want.digest),
                )),
                None => out.push(found(
                    "end-12a/missing",
                    format!("the image manifest {} is not listed", want.digest),
                )),
                Some(g) if g.artifact_type != want.artifact_type => out.push(found(
                    "end-12a/artifact-type",
                    format!(
                        "{} is listed with artifactType {:?}, expected {:?}",
                        want.digest, g.artifact_type, want.artifact_type
                    ),
                )),
                Some(g) if g.annotations != want.annotations => out.push(found(
                    "end-12a/annotations",
                    format!("{} is listed without its annotations", want.digest),
                )),
                Some(g) if g != *want => out.push(found(
                    "end-12a/descriptor",
                    format!(
                        "{} is listed with mediaType {:?} / size {}, expected {:?} / {}",
                        want.digest, g.media_type, g.size, want.media_type, want.size
                    ),
                )),
                Some(_) => {}
            }
        }
        let extra: Vec<&str> = got
            .iter()
            .filter(|g| by_digest(&self.expected, &g.digest).is_none())
            .map(|g| g.digest.as_str())
            .collect();
        if !extra.is_empty() && out.is_empty() {
            out.push(found(
                "end-12a/extra",
                format!("listed but not a referrer of the subject here: {extra:?}"),
            ));
        }
    }
}

impl Operation for ListReferrers {
    fn kind(&self, _: &ModelState, _: &Content) -> Option<&'static str> {
        Some("list_referrers")
    }

    fn apply(&self, _: &mut ModelState, _: &Content) {}

    fn plan(&self, content: &Content) -> Plan {
        let url = Url::repo_escaped(
            self.repo,
            "referrers/",
            &reference_text(&self.subject, content),
        );
        // Paged: "A `Link` header MUST be included in the response when the descriptor list
        // cannot be returned in a single manifest"; every page is followed (no `n` / `last`).
        Plan::one(
            match &self.artifact_type {
                Some(a) => {
                    Step::new("get", "end-12b", Method::Get, url).query("artifactType", a.as_str())
                }
                None => Step::new("get", "end-12a", Method::Get, url),
            }
            .paged(0),
        )
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        let (st, content) = (cx.st, cx.content);
        let unsupported_404 = if cx.facts.referrers == Some(true) || cx.is_reference {
            "end-12a/not-404"
        } else {
            "end-12a/unsupported"
        };
        let e = match ReferrersCheck::of(self, st, content) {
            Some(check) => {
                let e = if st.repo_exists(self.repo) {
                    Exp::new(&[200], "end-12a/200").alt(&[404], unsupported_404)
                } else {
                    Exp::new(&[200, 404], "end-12a/200")
                };
                e.header_eq(200, "content-type", OCI_INDEX, "end-12a/content-type")
                    .check(200, Check::Body(Arc::new(check)))
            }
            None => Exp::new(&[400], "end-12a/invalid-400").alt(&[404], unsupported_404),
            // ^ a malformed subject digest: 400 is a MUST of the referrers API.
        };
        Some(e.sha512_declinable(is_sha512(&self.subject, content)))
    }

    fn check_op(&self, cx: &ExpectCx<'_>, exs: &[Exchange]) -> Vec<Found> {
        let mut out = Vec::new();
        if let Some(check) = ReferrersCheck::of(self, cx.st, cx.content) {
            check.check_pages(exs, &mut out);
        }
        out
    }

    fn footprint(&self, _: &ModelState, _: &Content) -> Footprint {
        let f = Footprint::default().read(Sym::RepoExists(self.repo));
        match self.subject {
            Reference::Digest(m) => f.read(Sym::Referrers(self.repo, m)),
            _ => f,
        }
    }

    fn ids(&self) -> Ids {
        Ids::manifests(self.subject.manifest())
    }

    fn renumber(&mut self, r: &Renumber) {
        self.subject = self.subject.renumbered(|m| r.manifest(m));
    }
}
