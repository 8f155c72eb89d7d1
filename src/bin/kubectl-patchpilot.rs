//! The `kubectl-patchpilot` kubectl plugin (`kubectl patchpilot …`); everything lives in the
//! library's `plugin` module.

fn main() -> std::process::ExitCode {
    patchpilot::plugin::main()
}
