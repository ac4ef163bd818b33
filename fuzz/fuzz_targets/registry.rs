#![no_main]
//! `registry`: see `fuzz/src/lib.rs` (table) and `fuzz/README.md`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ocidiff_fuzz::registry::registry_bytes(data));
