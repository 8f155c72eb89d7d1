//! `kubectl_complete-patchpilot`: shell completion of `kubectl patchpilot …`, which kubectl
//! runs when it finds it on the `PATH` beside the plugin.

fn main() -> std::process::ExitCode {
    patchpilot::plugin::complete()
}
