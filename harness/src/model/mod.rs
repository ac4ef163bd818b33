//! The model of a spec-exact registry: its state (`ModelState`) and the spec's grammars.
//! Operations (`ops`) say how each of them changes the state.

pub mod grammar;
pub mod state;

pub use grammar::{classify_reference, is_valid_digest, is_valid_tag, reference_text, RefKind};
pub use state::{ModelState, SessionState};
