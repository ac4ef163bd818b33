//! The scenario file format (TOML): read and write Sequences with optional expectations; shared by reproducers, scenarios/ and corpora/.
