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
    /// The model's tags.
    pub required: Vec<String>,
    /// Tags whose manifest was deleted, which a registry may still list.
    pub optional: Vec<String>,
    pub last: Option<String>,
    pub n: Option<u32>,
    /// One page of a paged listing: only the JSON, the order and the size are checked here
    /// (the concatenation is checked per op).
    pub page_only: bool,
}

/// 200 for an existing repository; a repository without any tag may be "not found" for the tag
/// list (the spec does not define when a repository exists; registries key it on tags).
fn tags_exp(cx: &ExpectCx<'_>, repo: Repo) -> Exp {
    let e = Exp::new(&[200], "end-8a/200");
    if cx.st.tags(repo).is_empty() {
        e.alt(&[404], "end-8a/unknown-repo")
    } else if cx.facts.tags != Some(true) && !cx.is_reference {
        // Tags exist, yet no tag list of this case answered 200: a registry that does not
        // implement the endpoint (Content Discovery is a SHOULD).
        e.alt(&[404], "end-8a/unsupported")
    } else {
        e
    }
}

fn unknown_repo() -> Exp {
    Exp::new(&[404], "end-8a/200").alt(&[200], "end-8a/unknown-repo")
}

/// The two orders the spec allows: "lexical (i.e. case-insensitive alphanumeric order)" or
/// "ASCIIbetical". In the lexical order, tags equal but for case tie and may come either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Ascii,
    Lexical,
}

impl Order {
    fn key(self, t: &str) -> String {
        match self {
            Order::Ascii => t.to_string(),
            Order::Lexical => t.to_lowercase(),
        }
    }

    fn sorted(self, tags: &[String]) -> bool {
        tags.windows(2).all(|w| match self {
            Order::Ascii => w[0] < w[1],
            Order::Lexical => self.key(&w[0]) <= self.key(&w[1]) && w[0] != w[1],
        })
    }

    /// Whether `t` may come after `last` (strictly after; a lexical tie may be either side).
    fn after(self, t: &str, last: &str) -> (bool, bool) {
        let (k, l) = (self.key(t), self.key(last));
        (k > l, k == l && t != last)
    }
}

impl BodyCheck for TagsCheck {
    fn check(&self, o: &Observation, out: &mut Vec<Found>) {
        let BodyFacts::Tags { name, tags } = &o.body else {
            out.push(Found::body(
                "end-8a/json",
                "tag list body is not the spec's JSON",
                "{\"name\": ..., \"tags\": [...]}",
                o.body.describe(),
            ));
            return;
        };
        let suffix = format!("/r{}", self.repo.0);
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
        let orders: Vec<Order> = [Order::Ascii, Order::Lexical]
            .into_iter()
            .filter(|ord| ord.sorted(tags))
            .collect();
        if orders.is_empty() {
            out.push(Found::body(
                "end-8a/order",
                "tags are not sorted (neither ASCIIbetical nor case-insensitive), or repeat",
                "sorted tags",
                actual,
            ));
            return;
        }
        // Accept the first order under which the page is right; else report under the first.
        let mut reports: Vec<Vec<Found>> = orders
            .iter()
            .map(|ord| self.judge(*ord, tags, link, &actual))
            .collect();
        if reports.iter().all(|r| !r.is_empty()) {
            out.append(&mut reports[0]);
        }
    }
}

impl TagsCheck {
    /// What does not hold of `tags` in order `ord`.
    fn judge(&self, ord: Order, tags: &[String], link: bool, actual: &str) -> Vec<Found> {
        let mut out = Vec::new();
        let f = |rule: &'static str, summary: String, expected: String| {
            Found::body(rule, summary, expected, actual.to_string())
        };
        // Known tags: required, optional (dangling); after `last` (or maybe, on a tie).
        let after = |t: &str| match &self.last {
            None => (true, false),
            Some(l) => ord.after(t, l),
        };
        let remaining: Vec<&String> = self.required.iter().filter(|t| after(t).0).collect();
        let mut tolerated: Vec<&String> = self.required.iter().filter(|t| after(t).1).collect();
        tolerated.extend(self.optional.iter().filter(|t| {
            let (a, tie) = after(t);
            a || tie
        }));
        if let Some(unknown) = tags
            .iter()
            .find(|t| !self.required.contains(t) && !self.optional.contains(t))
        {
            out.push(f(
                "end-8a/tags",
                format!("tag {unknown:?} is not a tag of the repository"),
                format!("{:?}", self.required),
            ));
            return out;
        }
        if let Some(before) = tags
            .iter()
            .find(|t| !remaining.contains(t) && !tolerated.contains(t))
        {
            out.push(f(
                "end-8b/content",
                match &self.last {
                    Some(last) => format!("tag {before:?} does not come after last={last:?}"),
                    None => format!("tag {before:?} came back on a later page"),
                },
                format!("{remaining:?}"),
            ));
            return out;
        }
        let whole = self.n.is_none() && self.last.is_none() && !self.page_only;
        if whole {
            let missing: Vec<&&String> = remaining.iter().filter(|t| !tags.contains(t)).collect();
            if !missing.is_empty() {
                out.push(f(
                    "end-8a/tags",
                    format!("tag list lacks {missing:?}"),
                    format!("{remaining:?}"),
                ));
            }
            return out;
        }
        match self.n {
            Some(0) => {
                if !tags.is_empty() || link {
                    out.push(Found::new(
                        if link { "header:link" } else { "body" },
                        "end-8b/n-zero",
                        "n=0 must give an empty list without Link",
                        "[] without Link",
                        actual.to_string(),
                    ));
                }
                return out;
            }
            Some(n) if tags.len() > n as usize => {
                out.push(f(
                    if link {
                        "end-8b/n-more-with-link"
                    } else {
                        "end-8b/n-max"
                    },
                    format!("{} tags returned for n={n}", tags.len()),
                    format!("at most {n}"),
                ));
                return out;
            }
            _ => {}
        }
        if self.page_only {
            return out;
        }
        // A page is a prefix of what remains: every remaining tag ordered before the page's
        // last one is on the page.
        if let Some(max) = tags.iter().map(|t| ord.key(t)).max() {
            let skipped: Vec<&&String> = remaining
                .iter()
                .filter(|t| ord.key(t) < max && !tags.contains(t))
                .collect();
            if !skipped.is_empty() {
                out.push(f(
                    "end-8b/content",
                    format!("the page skips {skipped:?}"),
                    format!("{remaining:?}"),
                ));
                return out;
            }
        }
        let want = self.n.map(|n| n as usize).unwrap_or(usize::MAX);
        let listed = remaining.iter().filter(|t| tags.contains(t)).count();
        if tags.len() < want && listed < remaining.len() && !link {
            out.push(f(
                if self.n.is_some() {
                    "end-8b/n-fewer"
                } else {
                    "end-8b/content"
                },
                format!(
                    "{} tags returned without Link though {} remain",
                    tags.len(),
                    remaining.len()
                ),
                format!("{:?}", remaining.iter().take(want).collect::<Vec<_>>()),
            ));
        }
        out
    }
}

/// Op-level check of a paged listing: the pages together are the model's list, in one of the
/// allowed orders (dangling tags may appear or not).
fn check_paged(repo: Repo, n: u32, st: &ModelState, exs: &[Exchange]) -> Vec<Found> {
    let all = st.tags(repo);
    let optional = st.dangling_tags(repo);
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
    if exs.is_empty() || !st.repo_exists(repo) || last_link {
        // Nothing to judge, or the page limit cut the listing short.
        return Vec::new();
    }
    let kept: Vec<String> = got
        .iter()
        .filter(|t| !optional.contains(t))
        .cloned()
        .collect();
    let mut sorted_kept = kept.clone();
    sorted_kept.sort();
    let same_set = sorted_kept == all;
    let ordered = [Order::Ascii, Order::Lexical]
        .iter()
        .any(|o| o.sorted(&got));
    if same_set && ordered {
        return Vec::new();
    }
    vec![Found::body(
        "end-8b/pagination",
        format!(
            "paging with n={n} gave {} tags, the repository has {}",
            got.len(),
            all.len()
        ),
        format!("{all:?}"),
        format!("{got:?}"),
    )]
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
        Some(tags_exp(cx, self.repo).check(
            200,
            Check::Body(Arc::new(TagsCheck {
                repo: self.repo,
                required: cx.st.tags(self.repo),
                optional: cx.st.dangling_tags(self.repo),
                last: self.last.clone(),
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
            .paged(self.n),
        )
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        if !cx.st.repo_exists(self.repo) {
            return Some(unknown_repo());
        }
        // Per page: JSON, order, at most n (the concatenation is checked per op).
        Some(tags_exp(cx, self.repo).check(
            200,
            Check::Body(Arc::new(TagsCheck {
                repo: self.repo,
                required: cx.st.tags(self.repo),
                optional: cx.st.dangling_tags(self.repo),
                last: None,
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
