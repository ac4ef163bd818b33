//! Shared helpers for the end-to-end tests (free ports, starting Debian distribution, temp dirs).
