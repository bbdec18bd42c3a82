//! The `pgmigrate` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    pgmigrate::cli::main()
}
