//! `GET /v2/_catalog`: not in the spec (a common extension), observed and never a violation;
//! only that the case's repositories are listed is checked.

use super::expect::{BodyCheck, Check, Exp, ExpectCx, Found};
use super::gen::Transition;
use super::{Footprint, Ids, Op, Operation, Renumber};
use crate::model::ModelState;
use crate::vocab::content::Content;
use crate::vocab::exchange::{BodyFacts, Exchange, Observation};
use crate::vocab::plan::{Method, Plan, Step, Url};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `GET /v2/_catalog[?n=]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
}

pub const TRANSITIONS: &[Transition] = &[Transition {
    name: "catalog",
    invalid: false,
    offer: |_| vec![Op::Catalog(Catalog { n: None })],
}];

/// The catalog lists these repositories.
#[derive(Clone, Debug)]
struct CatalogCheck {
    repos: Vec<String>,
}

impl BodyCheck for CatalogCheck {
    fn check(&self, o: &Observation, out: &mut Vec<Found>) {
        if let BodyFacts::Catalog { repositories } = &o.body {
            let missing: Vec<&String> = self
                .repos
                .iter()
                .filter(|r| !repositories.contains(r))
                .collect();
            if !missing.is_empty() {
                out.push(Found::body(
                    "catalog/missing-repo",
                    format!("catalog does not list {missing:?}"),
                    format!("{:?} listed", self.repos),
                    o.body.describe(),
                ));
            }
        }
    }
}

impl Operation for Catalog {
    fn kind(&self, _: &ModelState, _: &Content) -> Option<&'static str> {
        Some("catalog")
    }

    fn apply(&self, _: &mut ModelState, _: &Content) {}

    fn plan(&self, _: &Content) -> Plan {
        let step = Step::new("get", "catalog", Method::Get, Url::path("/v2/_catalog"));
        Plan::one(match self.n {
            Some(n) => step.query("n", n.to_string()),
            None => step,
        })
    }

    fn expect(&self, cx: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        let mut e =
            Exp::new(&[200], "catalog/status").alt(&[401, 403, 404, 405], "catalog/unsupported");
        if let (None, Some(ns)) = (self.n, &cx.facts.namespace) {
            let repos = cx
                .st
                .repos()
                .iter()
                .map(|r| format!("{ns}/r{}", r.0))
                .collect();
            e = e.check(200, Check::Body(Arc::new(CatalogCheck { repos })));
        }
        Some(e)
    }

    fn check_op(&self, _: &ExpectCx<'_>, _: &[Exchange]) -> Vec<Found> {
        Vec::new()
    }

    fn footprint(&self, _: &ModelState, _: &Content) -> Footprint {
        Footprint::default()
    }

    fn ids(&self) -> Ids {
        Ids::default()
    }

    fn renumber(&mut self, _: &Renumber) {}
}
