//! The `patchpilot` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    patchpilot::cli::main()
}
