#![no_main]
//! `www_authenticate`: see `fuzz/src/lib.rs` (table) and `fuzz/README.md`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ocidiff_fuzz::www_authenticate(data));
