//! proptest strategies producing state-aware Sequences: mostly valid, meaningful ops, a tunable share of invalid ones; same seed, same sequence.
