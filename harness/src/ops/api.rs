//! end-1: `GET /v2/`, whether the registry implements the spec.

use super::expect::{Exp, ExpectCx, Found};
use super::gen::{Draw, Transition};
use super::{Footprint, Ids, Op, Operation, Renumber};
use crate::model::ModelState;
use crate::vocab::content::Content;
use crate::vocab::exchange::Exchange;
use crate::vocab::plan::{Method, Plan, Step, Url};
use serde::{Deserialize, Serialize};

/// `GET /v2/`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckApi {}

pub const TRANSITIONS: &[Transition] = &[Transition {
    name: "check_api",
    invalid: false,
    offer: |_: &mut Draw<'_>| vec![Op::CheckApi(CheckApi {})],
}];

impl Operation for CheckApi {
    fn kind(&self, _: &ModelState, _: &Content) -> Option<&'static str> {
        Some("check_api")
    }

    fn apply(&self, _: &mut ModelState, _: &Content) {}

    fn plan(&self, _: &Content) -> Plan {
        Plan::one(Step::new("get", "end-1", Method::Get, Url::path("/v2/")))
    }

    fn expect(&self, _: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        Some(Exp::new(&[200], "end-1/200"))
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
