//! Requests with an invalid (or overlong) repository name on a few endpoints.

use super::expect::{Exp, ExpectCx, Found};
use super::gen::Transition;
use super::refs::manifest_accept;
use super::{Footprint, Ids, Op, Operation, Renumber};
use crate::model::ModelState;
use crate::vocab::content::Content;
use crate::vocab::exchange::Exchange;
use crate::vocab::plan::{Method, Plan, Seg, Step, Url};
use serde::{Deserialize, Serialize};

/// Which endpoint a `BadName` request targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadNameEndpoint {
    TagList,
    ManifestGet,
    BlobUpload,
}

/// A request with an invalid repository name (expect NAME_INVALID or 404).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadName {
    pub name: String,
    pub endpoint: BadNameEndpoint,
}

/// Repository names that are invalid (or over the 255-character client limit).
pub fn bad_names() -> Vec<String> {
    vec![
        "UPPER/case".into(),
        "a//b".into(),
        "-lead/x".into(),
        "x/trail-".into(),
        "a..b/c".into(),
        format!("{}/{}", "a".repeat(150), "b".repeat(149)),
    ]
}

pub const TRANSITIONS: &[Transition] = &[Transition {
    name: "bad_name",
    invalid: true,
    offer: |d| {
        let endpoint = match d.below(3) {
            0 => BadNameEndpoint::TagList,
            1 => BadNameEndpoint::ManifestGet,
            _ => BadNameEndpoint::BlobUpload,
        };
        let name = d.pick(&bad_names()).unwrap_or_default();
        vec![Op::BadName(BadName { name, endpoint })]
    },
}];

impl Operation for BadName {
    fn kind(&self, _: &ModelState, _: &Content) -> Option<&'static str> {
        Some("bad_name")
    }

    fn apply(&self, _: &mut ModelState, _: &Content) {}

    fn plan(&self, _: &Content) -> Plan {
        let (label, endpoint, method, rest) = match self.endpoint {
            BadNameEndpoint::TagList => ("get", "end-8a", Method::Get, "/tags/list"),
            BadNameEndpoint::ManifestGet => ("get", "end-3", Method::Get, "/manifests/latest"),
            BadNameEndpoint::BlobUpload => ("post", "end-4a", Method::Post, "/blobs/uploads/"),
        };
        let url = Url::Path(vec![
            Seg::Lit("/v2/".into()),
            Seg::Name(self.name.clone()),
            Seg::Lit(rest.into()),
        ]);
        let step = Step::new(label, endpoint, method, url);
        Plan::one(match self.endpoint {
            BadNameEndpoint::ManifestGet => step.header("accept", manifest_accept()),
            _ => step,
        })
    }

    fn expect(&self, _: &mut ExpectCx<'_>, _: &Exchange) -> Option<Exp> {
        // The spec gives the grammar (and clients' 255-character limit), not the answer.
        Some(Exp::client_error())
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
