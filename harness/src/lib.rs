//! ocidiff: differential fuzzing of OCI Distribution Spec registries.
//!
//! The folders follow the data, bottom to top, and import only downwards (a test checks it):
//!
//! - `vocab`: ids, content specs and rendering, request plans, exchanges, redaction;
//! - `model`: what a spec-exact registry holds (`ModelState`) and the spec's grammars;
//! - `ops`: one file per operation family, with everything about it (see `ops`);
//! - the stages: `generate` -> `execute` (with `targets` beside it) -> `observe` -> `compare`
//!   -> `shrink` -> `report`; `scenario` is the TOML format shared by reproducers, scenario
//!   files and the corpus;
//! - `drivers`: fuzz, replay, run / conformance, sharing one run-a-case path;
//! - `cli`: argument parsing only.
//!
//! See ARCHITECTURE.md.

pub mod vocab;

pub mod model;

pub mod ops;

pub mod generate;
pub mod observe;

pub mod execute;

pub mod targets;

pub mod compare;

pub mod shrink;

pub mod scenario;

pub mod report;

pub mod drivers;

pub mod cli;
