//! Command-line parsing for the ocidiff binary; calls into the modules, holds no logic of its own.
pub fn main() -> i32 {
    0
}
