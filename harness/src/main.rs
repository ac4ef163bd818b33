fn main() {
    std::process::exit(ocidiff::cli::main());
}
