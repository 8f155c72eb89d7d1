//! The `patchpilot` command line: one binary, one subcommand per job.
//!
//! Exit status: 0 on success, 2 on bad input (a missing or unreadable file, malformed YAML,
//! an invalid field, a bad flag), 1 when the work itself fails. Every error is one line on
//! standard error, except an object with several invalid fields: a line naming the file and
//! the object, then one cause a line.

mod input;
pub(crate) mod plan;
mod run;
mod sandbox;
mod window;

use std::{
    io::{self, Write},
    path::PathBuf,
    process::ExitCode,
};

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use input::{
    InputError, decode, decode_checked, describe, parse_objects, read_objects, read_one,
    read_one_checked, schema,
};
pub use run::init_logging;

use crate::api;

/// Declarative patch rollout for Kubernetes: canary, staged waves, maintenance windows,
/// health checks and automatic rollback.
#[derive(Debug, Parser)]
#[command(name = "patchpilot", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the operator against the cluster of the in-cluster config or KUBECONFIG.
    Run(RunArgs),
    /// Print every CRD as multi-document YAML: the same bytes as the files in crds/.
    Crd,
    /// Evaluate a MaintenanceWindow at an instant and print whether it is open, the current
    /// interval and the next ones, as JSON (or text with `-o text`).
    Window(WindowArgs),
    /// Print which targets a policy selects, which are excluded or up to date, and the waves,
    /// as JSON (or text with -o text).
    Plan(PlanArgs),
    /// Run the operator on an embedded simulated cluster; needs nothing else.
    Sandbox(SandboxArgs),
}

/// Flags of `patchpilot run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Address serving /metrics, /healthz, /readyz and the calendar of planned patching,
    /// /calendar.ics.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub metrics_addr: std::net::SocketAddr,
    /// Take part in leader election on a coordination.k8s.io Lease; only the leader acts.
    #[arg(long)]
    pub leader_elect: bool,
    /// How log lines are written.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The kubeconfig context to use (default: the current one, or the in-cluster config).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// List and watch the pods of nodes in progress separately, for API servers without
    /// streaming lists (`sendInitialEvents`).
    #[arg(long)]
    pub no_streaming_lists: bool,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Arguments of `patchpilot window`.
#[derive(Debug, Args)]
pub struct WindowArgs {
    /// A YAML file holding one MaintenanceWindow.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The instant to evaluate at, RFC 3339 (default: now).
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<jiff::Timestamp>,
    /// How many upcoming intervals to list (searched up to 400 days ahead; fewer found are
    /// said on standard error with JSON, under the list with text).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub next: usize,
    /// `json`: the JSON of the specification, for programs; `text`: for people, in the
    /// window's time zone and UTC, with why it is closed and the cutoff's last start.
    #[arg(long, short, value_enum, value_name = "FORMAT", default_value_t = Format::Json)]
    pub output: Format,
}

/// How a command prints its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JSON, for programs; its shape is fixed.
    Json,
    /// Text, for people.
    Text,
}

/// Arguments of `patchpilot plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// A YAML file holding one PatchPolicy.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Kubernetes objects as multi-document YAML or a `kind: List`, such as the output of
    /// `kubectl get nodes,namespaces,deployments,statefulsets,daemonsets -A -o yaml`.
    #[arg(long, value_name = "FILE")]
    pub cluster: PathBuf,
    /// Plan for this version instead of the policy's `spec.patch.version`.
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// The instant at which `patchpilot.dev/exclude-until` annotations are judged, RFC 3339
    /// (default: now).
    #[arg(long, value_name = "RFC3339")]
    pub at: Option<jiff::Timestamp>,
    /// Output format: the JSON of the specification, or text for people.
    #[arg(short, long, value_enum, value_name = "FORMAT", default_value_t = Format::Json)]
    pub output: Format,
}

/// Flags of `patchpilot sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// A scenario file (default: the built-in scenario).
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Serve the simulated cluster over HTTP on this loopback address and keep running.
    #[arg(long, value_name = "ADDR", requires = "kubeconfig_out")]
    pub serve: Option<std::net::SocketAddr>,
    /// Where to write a kubeconfig for kubectl (with --serve).
    #[arg(long, value_name = "FILE", requires = "serve")]
    pub kubeconfig_out: Option<PathBuf>,
    /// Write every API request as a Kubernetes audit event, one JSON object a line.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Write a JSON report of every rollout's outcome at the end.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// With --serve, how many times faster than real time the simulated cluster runs.
    #[arg(long, value_name = "N")]
    pub speed: Option<f64>,
    /// Serve the cluster without the operator, for `patchpilot run` started on its own
    /// against the kubeconfig (context `patchpilot`).
    #[arg(long)]
    pub without_operator: bool,
    /// Tell each target's story too (locked and cordoned, draining, updater started and
    /// finished, rebooting, back Ready, uncordoned, verified, updated), from the events the
    /// operator records on it.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input: exit status 2.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A flag's value is unusable: exit status 2.
    #[error("{flag}: {message}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The command is part of patchpilot's plan but has not landed yet: exit status 1.
    #[error("`patchpilot {command}` is not available yet: {reason}")]
    NotYetAvailable {
        /// The command.
        command: &'static str,
        /// Which part of patchpilot brings it.
        reason: &'static str,
    },
    /// Writing the output failed: exit status 1.
    #[error("cannot write the output: {0}")]
    Output(#[source] io::Error),
    /// A file named by a flag could not be opened or written: exit status 1.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The cluster could not be reached or the operator stopped: exit status 1.
    #[error("{0}")]
    Cluster(String),
    /// The sandbox stopped with an error: exit status 1.
    #[error(transparent)]
    Run(#[from] crate::sandbox::run::RunError),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) | CliError::Flag { .. } => 2,
            CliError::NotYetAvailable { .. }
            | CliError::Output(_)
            | CliError::File { .. }
            | CliError::Run(_)
            | CliError::Cluster(_) => 1,
        }
    }
}

/// Parses the arguments, runs the command and turns the outcome into an exit status.
pub fn main() -> ExitCode {
    report_panics();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`patchpilot crd | head`) is not an error of ours.
        Err(CliError::Output(error)) if error.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Makes a panic one line on standard error, as every other error, instead of a stack trace.
pub(crate) fn report_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string().replace('\n', " ");
        eprintln!("error: internal error, please report it: {message}");
    }));
}

/// Prints help and version as clap does; any other parse error as one line, exit status 2.
pub(crate) fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::from(if error.use_stderr() { 2 } else { 0 })
        }
        _ => {
            eprintln!("{} (see --help)", one_line(&error.render().to_string()));
            ExitCode::from(2)
        }
    }
}

/// A clap message as one line: its first paragraph. clap lists what a message is about on
/// the lines after its first (the arguments of "the following required arguments were not
/// provided:"), and puts a blank line before the usage and tips; the list is joined with
/// commas.
fn one_line(rendered: &str) -> String {
    let mut lines = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.is_empty());
    let Some(first) = lines.next() else {
        return "error: invalid arguments".to_owned();
    };
    let rest: Vec<&str> = lines.collect();
    if rest.is_empty() {
        first.to_owned()
    } else {
        format!("{first} {}", rest.join(", "))
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Crd => print_crds(),
        Command::Run(args) => run::run(&args),
        Command::Window(args) => window::run(&args),
        Command::Plan(args) => plan::run(&args),
        Command::Sandbox(args) => sandbox::run(&args),
    }
}

fn print_crds() -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    for crd in api::crds() {
        out.write_all(api::crd_yaml(&crd).as_bytes())
            .map_err(CliError::Output)?;
    }
    out.flush().map_err(CliError::Output)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn clap_messages_become_one_line() {
        let missing = "error: the following required arguments were not provided:\n  \
                       --policy <FILE>\n  --cluster <FILE>\n\nUsage: patchpilot plan\n";
        assert_eq!(
            super::one_line(missing),
            "error: the following required arguments were not provided: --policy <FILE>, \
             --cluster <FILE>"
        );
        let unknown = "error: unexpected argument '--x' found\n\n  tip: ...\n";
        assert_eq!(
            super::one_line(unknown),
            "error: unexpected argument '--x' found"
        );
        assert_eq!(super::one_line(""), "error: invalid arguments");
    }
}
