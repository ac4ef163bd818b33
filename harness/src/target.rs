//! Targets: parse --target specs, launch (embedded reference, embedded container-registry, distribution process, URL) and tear down; per-target name rules and credentials.
