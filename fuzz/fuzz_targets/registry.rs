#![no_main]
//! `registry`: see `fuzz/src/lib.rs` (table) and `fuzz/README.md`.

// Each input builds and drops a whole registry (maps, sessions, bodies, JSON trees): with
// glibc malloc ~15 % of the run was allocator time (fuzz/README.md). Feature `mimalloc`, for
// builds without a sanitizer only.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

libfuzzer_sys::fuzz_target!(|data: &[u8]| ocidiff_fuzz::registry::registry_bytes(data));
