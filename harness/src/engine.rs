//! The fuzz loop: seeds, cases, duration and shard bounds; generate -> exec -> oracle -> shrink -> report.
