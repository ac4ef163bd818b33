#![no_main]
//! `digest_verify`: see `fuzz/src/lib.rs` (table) and `fuzz/README.md`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ocidiff_fuzz::digest_verify(data));
