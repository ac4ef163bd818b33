#![no_main]
//! `link`: see `fuzz/src/lib.rs` (table) and `fuzz/README.md`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ocidiff_fuzz::link(data));
