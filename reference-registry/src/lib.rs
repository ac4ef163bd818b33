//! The ocidiff reference registry.
