//! The spec version a target is judged by (`--spec-version`, `spec_version` in `ocidiff.toml`).

use serde::{Deserialize, Serialize};

/// The version of the Distribution Spec a registry is judged by, with the official conformance
/// suite's names (`OCI_VERSION`): `1.0` = v1.0.1, `1.1` = v1.1.1 (the default, the latest
/// release), `1.1+dev` = the main branch (`harness/spec/`).
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
pub enum SpecVersion {
    #[serde(rename = "1.0")]
    V1_0,
    #[default]
    #[serde(rename = "1.1")]
    V1_1,
    #[serde(rename = "1.1+dev")]
    V1_1Dev,
}

impl SpecVersion {
    pub const ALL: [SpecVersion; 3] = [SpecVersion::V1_0, SpecVersion::V1_1, SpecVersion::V1_1Dev];

    /// The name the official suite's `OCI_VERSION` uses.
    pub fn name(self) -> &'static str {
        match self {
            SpecVersion::V1_0 => "1.0",
            SpecVersion::V1_1 => "1.1",
            SpecVersion::V1_1Dev => "1.1+dev",
        }
    }

    /// The text judged by: a release tag or the main branch.
    pub fn text(self) -> &'static str {
        match self {
            SpecVersion::V1_0 => "v1.0.1",
            SpecVersion::V1_1 => "v1.1.1",
            SpecVersion::V1_1Dev => "main (unreleased)",
        }
    }

    /// Its text's file name in `harness/spec/`.
    pub fn file(self) -> &'static str {
        match self {
            SpecVersion::V1_0 => "distribution-spec-v1.0.1.md",
            SpecVersion::V1_1 => "distribution-spec-v1.1.1.md",
            SpecVersion::V1_1Dev => "distribution-spec.md",
        }
    }

    /// The next version, whose view a run also lists ("ready for the next spec").
    pub fn next(self) -> Option<SpecVersion> {
        match self {
            SpecVersion::V1_0 => Some(SpecVersion::V1_1),
            SpecVersion::V1_1 => Some(SpecVersion::V1_1Dev),
            SpecVersion::V1_1Dev => None,
        }
    }

    /// Parses `1.0` / `1.1` / `1.1+dev` and the suite's aliases (`stable` = 1.1, `dev` =
    /// 1.1+dev), and the release names `1.0.1` / `1.1.1` (with or without `v`).
    pub fn parse(s: &str) -> Result<SpecVersion, String> {
        match s.trim().trim_start_matches('v') {
            "1.0" | "1.0.1" => Ok(SpecVersion::V1_0),
            "1.1" | "1.1.1" | "stable" => Ok(SpecVersion::V1_1),
            "1.1+dev" | "dev" | "main" => Ok(SpecVersion::V1_1Dev),
            other => Err(format!(
                "unknown spec version `{other}` (expected 1.0, 1.1 or 1.1+dev, as the official \
                 conformance suite's OCI_VERSION)"
            )),
        }
    }
}

impl std::fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SpecVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SpecVersion::parse(s)
    }
}
