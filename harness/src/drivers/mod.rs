//! The drivers: the fuzz loop, replay of one scenario, `ocidiff run` and `ocidiff conformance`.
//! All of them run a case through the same path (`case`): execute on every target, then
//! compare.

pub mod adaptive;
pub mod case;
pub mod conformance;
pub mod data_kinds;
pub mod fuzz;
pub mod fuzz_shrink;
pub mod generated;
pub mod merge;
pub mod race;
pub mod read_only;
pub mod replay;
