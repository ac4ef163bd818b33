//! end-8a / end-8b: the tag list, whole, with `n` and `last`, and paged through to the end.

use super::expect::{BodyCheck, Check, Exp, ExpectCx, Found};
use super::gen::{Draw, Transition};
use super::{Footprint, Ids, Op, Operation, Renumber, Sym};
use crate::model::ModelState;
use crate::vocab::content::Content;
use crate::vocab::exchange::{BodyFacts, Exchange, Observation};
use crate::vocab::plan::{Method, Plan, Step, Url};
use crate::vocab::Repo;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// end-8a / end-8b.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListTags {
    pub repo: Repo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

/// end-8b: page through the whole list with `n`, following `Link` (bounded page count).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListTagsPaged {
    pub repo: Repo,
    pub n: u32,
}

pub const TRANSITIONS: &[Transition] = &[
    Transition {
        name: "list_tags",
        invalid: false,
        offer: |d| {
            if d.tagged().is_empty() && !d.chance(1, 4) {
                return Vec::new();
            }
            let repo = existing_repo(d);
            let tags = d.st.tags(repo);
            let n = (!d.chance(1, 3)).then(|| d.below(5));
            let last = if d.chance(1, 3) {
                d.pick(&tags).or_else(|| Some(d.tag()))
            } else {
                None
            };
            vec![Op::ListTags(ListTags { repo, n, last })]
        },
    },
    Transition {
        name: "list_tags_paged",
        invalid: false,
        offer: |d| {
            let repo = existing_repo(d);
            let n = 1 + d.below(3);
            vec![Op::ListTagsPaged(ListTagsPaged { repo, n })]
        },
    },
];

fn existing_repo(d: &mut Draw<'_>) -> Repo {
    let repos = d.st.repos();
    match d.pick(&repos) {
        Some(r) => r,
        None => d.repo(),
    }
}

/// A tag list response, checked against the model.
#[derive(Clone, Debug)]
pub struct TagsCheck {
    pub repo: Repo,
    /// The model's tags (ASCII order); narrowed to those after `last` when checking.
    pub remaining: Vec<String>,
    pub last: Option<String>,
    /// Whether the whole list is expected (no `n`, no `last`).
    pub whole: bool,
    pub n: Option<u32>,
    /// One page of a paged listing: only order and size are checked here.
    pub page_only: bool,
}

/// 200 for an existing repository; a repository without any tag may be "not found" for the tag
/// list (the spec does not define when a repository exists; registries key it on tags).
fn tags_exp(st: &ModelState, repo: Repo) -> Exp {
    let e = Exp::new(&[200], "end-8a/200");
    if st.tags(repo).is_empty() {
        e.alt(&[404], "end-8a/unknown-repo")
    } else {
        e
    }
}

fn unknown_repo() -> Exp {
    Exp::new(&[404], "end-8a/200").alt(&[200], "end-8a/unknown-repo")
}

fn is_sorted_either(tags: &[String]) -> bool {
    tags.windows(2).all(|w| w[0] <= w[1])
        || tags
            .windows(2)
            .all(|w| w[0].to_lowercase() <= w[1].to_lowercase())
}

impl BodyCheck for TagsCheck {
    fn check(&self, o: &Observation, out: &mut Vec<Found>) {
        check_tags(self, o, out)
    }
}

fn check_tags(tc: &TagsCheck, o: &Observation, out: &mut Vec<Found>) {
    let BodyFacts::Tags { name, tags } = &o.body else {
        out.push(Found::body(
            "end-8a/json",
            "tag list body is not the spec's JSON",
            "{\"name\": ..., \"tags\": [...]}",
            o.body.describe(),
        ));
        return;
    };
    let suffix = format!("/r{}", tc.repo.0);
    if !name.ends_with(&suffix) {
        out.push(Found::body(
            "end-8a/name",
            format!("tag list names repository {name:?}"),
            format!("<namespace>{suffix}"),
            name.clone(),
        ));
    }
    let link = o.header("link").is_some();
    let actual = format!("{tags:?}{}", if link { " + Link" } else { "" });
    let mut f = |rule: &'static str, summary: String, expected: String| {
        out.push(Found::body(rule, summary, expected, actual.clone()))
    };
    if !is_sorted_either(tags) {
        f(
            "end-8a/order",
            "tags are not sorted".into(),
            "sorted tags".into(),
        );
        return;
    }
    // The spec allows ASCIIbetical or case-insensitive order: use the one the target used.
    let ascii = tags.windows(2).all(|w| w[0] <= w[1]);
    let key = |t: &str| {
        if ascii {
            t.to_string()
        } else {
            t.to_lowercase()
        }
    };
    let mut ordered = tc.remaining.clone();
    if !ascii {
        ordered.sort_by_key(|t| (t.to_lowercase(), t.clone()));
    }
    let remaining: Vec<String> = match &tc.last {
        Some(l) => ordered.into_iter().filter(|t| key(t) > key(l)).collect(),
        None => ordered,
    };
    if tc.whole {
        if *tags != remaining {
            f(
                "end-8a/tags",
                "tag list differs from the model".into(),
                format!("{remaining:?}"),
            );
        }
        return;
    }
    match tc.n {
        Some(0) => {
            if !tags.is_empty() || link {
                let field = if link { "header:link" } else { "body" };
                out.push(Found::new(
                    field,
                    "end-8b/n-zero",
                    "n=0 must give an empty list without Link",
                    "[] without Link",
                    actual.clone(),
                ));
            }
            return;
        }
        Some(n) if tags.len() > n as usize => {
            f(
                "end-8b/n-max",
                format!("{} tags returned for n={n}", tags.len()),
                format!("at most {n}"),
            );
            return;
        }
        _ => {}
    }
    if tc.page_only {
        return;
    }
    // The tags must be a prefix of the remaining list.
    let prefix: Vec<String> = remaining.iter().take(tags.len()).cloned().collect();
    if *tags != prefix {
        f(
            "end-8b/content",
            "tags differ from the model's list after `last`".into(),
            format!(
                "{:?}",
                remaining.iter().take(tags.len().max(1)).collect::<Vec<_>>()
            ),
        );
        return;
    }
    let want = tc.n.map(|n| n as usize).unwrap_or(usize::MAX);
    if tags.len() < want && tags.len() < remaining.len() && !link {
        f(
            "end-8b/n-fewer",
            format!(
                "{} tags returned without Link though {} remain",
                tags.len(),
                remaining.len()
            ),
            format!("{:?}", remaining.iter().take(want).collect::<Vec<_>>()),
        );
    }
}

/// Op-level check of a paged listing: the pages concatenate to the model's list.
fn check_paged(repo: Repo, n: u32, st: &ModelState, exs: &[Exchange]) -> Vec<Found> {
    let all = st.tags(repo);
    let mut got = Vec::new();
    let mut last_link = false;
    for ex in exs {
        if ex.observation.status != 200 {
            return Vec::new();
        }
        if let BodyFacts::Tags { tags, .. } = &ex.observation.body {
            got.extend(tags.iter().cloned());
        }
        last_link = ex.observation.header("link").is_some();
    }
    if exs.is_empty() || !st.repo_exists(repo) {
        return Vec::new();
    }
    let complete = !last_link;
    let mut ci = all.clone();
    ci.sort_by_key(|t| (t.to_lowercase(), t.clone()));
    let matches = |want: &Vec<String>| {
        if complete {
            got == *want
        } else {
            got.len() <= want.len() && got[..] == want[..got.len()]
        }
    };
    if !matches(&all) && !matches(&ci) {
        vec![Found::body(
            "end-8b/pagination",
            format!(
                "paging with n={n} gave {} tags, model has {}",
                got.len(),
                all.len()
            ),
            format!("{all:?}"),
            format!("{got:?}"),
        )]
    } else {
        Vec::new()
    }
}

fn list_footprint(repo: Repo) -> Footprint {
    Footprint::default()
        .read(Sym::Tags(repo))
        .read(Sym::RepoExists(repo))
}

impl Operation for ListTags {
    fn kind(&self, _: &ModelState, _: &Content) -> Option<&'static str> {
        Some("list_tags")
    }

    fn apply(&self, _: &mut ModelState, _: &Content) {}

    fn plan(&self, _: &Content) -> Plan {
        let endpoint = if self.n.is_none() && self.last.is_none() {
            "end-8a"
        } else {
            "end-8b"
        };
        let mut step = Step::new(
            "get",
            endpoint,
            Method::Get,
            Url::repo(self.repo, "tags/list"),
        );
        if let Some(n) = self.n {
            step = step.query("n", n.to_string());
        }
        if let Some(l) = &self.last {
            step = step.query("last", l.as_str());
        }
        Plan::one(step)
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        if !cx.st.repo_exists(self.repo) {
            return Some(unknown_repo());
        }
        Some(tags_exp(cx.st, self.repo).check(
            200,
            Check::Body(Arc::new(TagsCheck {
                repo: self.repo,
                remaining: cx.st.tags(self.repo),
                last: self.last.clone(),
                whole: self.n.is_none() && self.last.is_none(),
                n: self.n,
                page_only: false,
            })),
        ))
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, _: &ModelState, _: &Content) -> Footprint {
        list_footprint(self.repo)
    }

    fn ids(&self) -> Ids {
        Ids::default()
    }

    fn renumber(&mut self, _: &Renumber) {}
}

impl Operation for ListTagsPaged {
    fn kind(&self, _: &ModelState, _: &Content) -> Option<&'static str> {
        Some("list_tags_paged")
    }

    fn apply(&self, _: &mut ModelState, _: &Content) {}

    fn plan(&self, _: &Content) -> Plan {
        Plan::one(
            Step::new(
                "page",
                "end-8b",
                Method::Get,
                Url::repo(self.repo, "tags/list"),
            )
            .query("n", self.n.to_string())
            .paged(),
        )
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        if !cx.st.repo_exists(self.repo) {
            return Some(unknown_repo());
        }
        // Per page: sorted, at most n, only known tags (the concatenation is checked per op).
        Some(tags_exp(cx.st, self.repo).check(
            200,
            Check::Body(Arc::new(TagsCheck {
                repo: self.repo,
                remaining: cx.st.tags(self.repo),
                last: None,
                whole: false,
                n: Some(self.n).filter(|n| *n > 0),
                page_only: true,
            })),
        ))
    }

    fn check_op(&self, cx: &ExpectCx<'_>, exs: &[Exchange]) -> Vec<Found> {
        check_paged(self.repo, self.n, cx.st, exs)
    }

    fn footprint(&self, _: &ModelState, _: &Content) -> Footprint {
        list_footprint(self.repo)
    }

    fn ids(&self) -> Ids {
        Ids::default()
    }

    fn renumber(&mut self, _: &Renumber) {}
}
