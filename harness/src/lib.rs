//! ocidiff: differential fuzzing of OCI Distribution Spec registries.
//!
//! Data flows one way: `model` (vocabulary) -> `content` / `state` -> `generate` -> `exec`
//! (with `target`) -> `observe` -> `oracle` -> `shrink` -> `report`; `scenario` reads and writes
//! sequences; `engine` drives the loop; `checks` evaluates a scenario's `[[expect]]` checks;
//! `conformance` (with `conformance_html`) runs scenario files and the conformance workflows and
//! writes their reports; `cli` parses arguments. See ARCHITECTURE.md.

pub mod auth;
pub mod checks;
pub mod cli;
pub mod config;
pub mod conformance;
pub mod conformance_html;
pub mod container;
pub mod content;
pub mod engine;
pub mod exec;
pub mod external;
pub mod generate;
pub mod model;
pub mod observe;
pub mod oracle;
pub mod presets;
pub mod report;
pub mod scenario;
pub mod shrink;
pub mod state;
pub mod target;
