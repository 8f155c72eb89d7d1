//! `kubectl patchpilot`: the kubectl plugin for the people following a rollout.
//!
//! kubectl runs an executable named `kubectl-patchpilot` found on the `PATH` for
//! `kubectl patchpilot …`, passing the rest of the command line as it is; the plugin reads
//! `--kubeconfig` and `--context` itself, as kubectl's own commands do.
//!
//! Exit status: 0 on success; `status` exits 1 when the rollout ended without its change
//! (`Failed`, `RolledBack`) or is `Stalled`, and 3 when `--timeout` passes first; 2 on bad
//! input (a bad flag, a rollout or policy that does not exist, a request that makes no sense
//! in the rollout's phase); 1 when the cluster cannot be reached or refuses a change.

mod calendar;
mod complete;
mod health;
mod history;
mod list;
mod live;
mod plan;
mod report;
mod status;
mod steer;
mod text;
mod unlock;

use std::{io, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use kube::{Api, Client, api::ListParams};

use crate::{
    api::{PatchPolicy, PatchRollout},
    engine::calendar::Horizon,
};

/// Follow and steer patchpilot's rollouts: see where each target stands and what holds it,
/// approve, promote, pause, resume, abort and retry; plan a policy against the cluster,
/// report its compliance, read its history, export the calendar of planned patching, and
/// break a lock left by a rollout that is gone.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl patchpilot",
    bin_name = "kubectl patchpilot",
    version,
    after_help = "Every command reads the cluster of the current kubeconfig context; --kubeconfig and --context choose another."
)]
pub struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

/// Where the cluster is, as kubectl's own flags say it.
#[derive(Debug, Args)]
struct Connection {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the current one).
    #[arg(long, global = true, value_name = "NAME")]
    context: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every rollout, newest first: policy, version, phase, wave, counts, age, next window.
    List(ListArgs),
    /// A rollout as a tree: phase, waves, targets in progress and what holds them, failures.
    /// Exits 0 when it succeeded, 1 when it failed, rolled back or is stalled.
    Status(StatusArgs),
    /// Approve a rollout waiting for approval (sets spec.approved).
    Approve(OneRollout),
    /// Let a rollout go on after its healthy canary (sets spec.promoted).
    Promote(OneRollout),
    /// Start no new targets; targets in progress finish (sets spec.paused).
    Pause(SomeRollouts),
    /// Resume a paused or halted rollout (clears spec.paused).
    Resume(SomeRollouts),
    /// Stop and roll back everything a rollout changed (sets spec.abort; cannot be undone).
    Abort(OneRollout),
    /// Send a rollout's failed targets back to pending and resume it (raises spec.retry).
    Retry(OneRollout),
    /// The plan of a policy against the live cluster: waves, targets, exclusions, and when
    /// its window next opens.
    Plan(PolicyArgs),
    /// A policy's rollouts, kept or pruned: version, change reference, who approved, start,
    /// end and outcome.
    History(PolicyArgs),
    /// Compliance per policy: up to date, pending, in progress, failed, excluded (with the
    /// justification and its expiry), not applicable, overdue against the deadline.
    Report(ReportArgs),
    /// The upcoming openings of each maintenance window with the rollouts planned in them,
    /// and the freezes, as iCalendar (RFC 5545) to subscribe a calendar to.
    Calendar(CalendarArgs),
    /// Break a lock whose rollout is gone, after saying what it will do; a node is
    /// uncordoned only if patchpilot cordoned it.
    Unlock(UnlockArgs),
}

/// Which rollout: by name, or the current one of a policy.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct Which {
    /// The PatchRollout.
    #[arg(value_name = "ROLLOUT")]
    rollout: Option<String>,
    /// The current rollout of this PatchPolicy.
    #[arg(long, value_name = "POLICY")]
    policy: Option<String>,
}

/// One rollout to act on.
#[derive(Debug, Args)]
struct OneRollout {
    #[command(flatten)]
    which: Which,
}

/// One rollout, or every active one.
#[derive(Debug, Args)]
struct SomeRollouts {
    /// The PatchRollout.
    #[arg(value_name = "ROLLOUT", conflicts_with_all = ["policy", "all"])]
    rollout: Option<String>,
    /// The current rollout of this PatchPolicy.
    #[arg(long, value_name = "POLICY", conflicts_with = "all")]
    policy: Option<String>,
    /// Every rollout that has not ended.
    #[arg(long)]
    all: bool,
}

/// Flags of `list`.
#[derive(Debug, Args)]
struct ListArgs {
    /// Output format: a table (wide adds the change reference and the failures), or the
    /// PatchRollouts as a kubectl List.
    #[arg(short, long, value_enum, value_name = "FORMAT")]
    output: Option<Output>,
}

/// Flags of `status`.
#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    which: Which,
    /// Redraw the tree as the rollout changes, until it ends (or --timeout passes).
    #[arg(short, long)]
    watch: bool,
    /// With --watch, give up after this long (as `30s`, `10m`, `2h`): exit status 3.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Print the PatchRollout as JSON or YAML instead of the tree (wide: the tree with the
    /// pods a drain waits on).
    #[arg(short, long, value_enum, value_name = "FORMAT")]
    output: Option<Output>,
}

/// Flags of `plan` and `history`.
#[derive(Debug, Args)]
struct PolicyArgs {
    /// The PatchPolicy.
    #[arg(value_name = "POLICY")]
    policy: String,
    /// Output format: text (wide: more columns), or JSON or YAML (for `plan`,
    /// `patchpilot plan`'s JSON with the window and the current rollout).
    #[arg(short, long, value_enum, value_name = "FORMAT")]
    output: Option<Output>,
}

/// Flags of `report`.
#[derive(Debug, Args)]
struct ReportArgs {
    /// The PatchPolicies to report on (default: every one).
    #[arg(value_name = "POLICY")]
    policies: Vec<String>,
    /// Output format: a table (wide adds every target not up to date), JSON or YAML, or CSV
    /// with one row a target, for auditors.
    #[arg(short, long, value_enum, value_name = "FORMAT")]
    output: Option<ReportFormat>,
}

/// Flags of `calendar`.
#[derive(Debug, Args)]
struct CalendarArgs {
    /// The MaintenanceWindows to show (default: every one).
    #[arg(value_name = "WINDOW")]
    windows: Vec<String>,
    /// How many days ahead, from 1 to 400: the openings starting within them (at most 50 a
    /// window), and the freezes overlapping them.
    #[arg(
        long,
        value_name = "N",
        default_value_t = Horizon::DEFAULT_DAYS,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(Horizon::MAX_DAYS))
    )]
    days: u32,
}

/// Flags of `unlock`.
#[derive(Debug, Args)]
struct UnlockArgs {
    /// The target: a node (NAME or node/NAME) or a workload (deployment/NAME with -n, or
    /// Deployment/NAMESPACE/NAME as patchpilot prints targets).
    #[arg(value_name = "NODE|WORKLOAD")]
    target: String,
    /// The namespace of a workload named as KIND/NAME (default: default).
    #[arg(short, long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// Say what would be done, and change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// The formats of `report`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// Comma-separated values, one row a target (RFC 4180).
    Csv,
    /// The table, then every target that is not up to date.
    Wide,
}

/// The output formats kubectl users know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// More columns, or more detail.
    Wide,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    text.parse::<crate::engine::units::Duration>()
        .map(|d| Duration::from_millis(d.as_millis()))
        .map_err(|e| e.to_string())
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
enum PluginError {
    /// Bad input, or a request that makes no sense now: exit status 2.
    #[error("{0}")]
    Refused(String),
    /// The cluster could not be reached or refused the request: exit status 1.
    #[error("{0}")]
    Cluster(String),
    /// Writing the output failed: exit status 1.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

impl PluginError {
    fn exit_code(&self) -> u8 {
        match self {
            PluginError::Refused(_) => 2,
            PluginError::Cluster(_) | PluginError::Output(_) => 1,
        }
    }

    /// A failed API call, with what was being done.
    fn api(doing: impl std::fmt::Display, error: kube::Error) -> Self {
        match &error {
            kube::Error::Api(status) if status.code == 404 => {
                PluginError::Refused(format!("{doing}: {}", status.message))
            }
            kube::Error::Api(status) => {
                PluginError::Cluster(format!("{doing}: {}", status.message))
            }
            _ => PluginError::Cluster(format!("{doing}: {error}")),
        }
    }
}

/// Encoding the output failed.
impl From<serde_json::Error> for PluginError {
    fn from(error: serde_json::Error) -> Self {
        PluginError::Output(io::Error::other(error))
    }
}

/// What a command leaves behind beside printing: the exit status.
type Outcome = Result<u8, PluginError>;

pub use complete::main as complete;

/// Parses the arguments, runs the command and turns the outcome into an exit status.
pub fn main() -> ExitCode {
    crate::cli::report_panics();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return crate::cli::usage_error(error),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(PluginError::Output(error)) if error.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Outcome {
    let client = client(&cli.connection).await?;
    match cli.command {
        Command::List(args) => list::run(&client, args.output).await,
        Command::Status(args) => status::run(&client, &args).await,
        Command::Approve(one) => steer::one(&client, steer::Verb::Approve, &one.which).await,
        Command::Promote(one) => steer::one(&client, steer::Verb::Promote, &one.which).await,
        Command::Abort(one) => steer::one(&client, steer::Verb::Abort, &one.which).await,
        Command::Retry(one) => steer::one(&client, steer::Verb::Retry, &one.which).await,
        Command::Pause(some) => steer::some(&client, steer::Verb::Pause, &some).await,
        Command::Resume(some) => steer::some(&client, steer::Verb::Resume, &some).await,
        Command::Plan(args) => plan::run(&client, &args.policy, args.output).await,
        Command::History(args) => history::run(&client, &args.policy, args.output).await,
        Command::Report(args) => report::run(&client, &args.policies, args.output).await,
        Command::Calendar(args) => calendar::run(&client, &args.windows, args.days).await,
        Command::Unlock(args) => unlock::run(&client, &args).await,
    }
}

/// A client for the cluster of the kubeconfig and context chosen, as kubectl would pick
/// them.
async fn client(connection: &Connection) -> Result<Client, PluginError> {
    let options = kube::config::KubeConfigOptions {
        context: connection.context.clone(),
        ..Default::default()
    };
    // A kubeconfig or context that cannot be used is bad input, as for kubectl.
    let unreachable = |e: &dyn std::fmt::Display| PluginError::Refused(format!("kubeconfig: {e}"));
    let config = match &connection.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| PluginError::Refused(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| unreachable(&e))?
        }
        None if connection.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| unreachable(&e))?,
        None => kube::Config::infer().await.map_err(|e| unreachable(&e))?,
    };
    let mut config = config;
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(concat!("kubectl-patchpilot/", env!("CARGO_PKG_VERSION"))),
    ));
    Client::try_from(config).map_err(|e| unreachable(&e))
}

/// The rollout a command names: by name, or the current one of `--policy`.
async fn rollout(client: &Client, which: &Which) -> Result<PatchRollout, PluginError> {
    let name = match (&which.rollout, &which.policy) {
        (Some(name), _) => name.clone(),
        (None, Some(policy)) => current_rollout(client, policy).await?,
        (None, None) => {
            return Err(PluginError::Refused(
                "name a rollout, or a policy with --policy".into(),
            ));
        }
    };
    get_rollout(client, &name).await
}

async fn get_rollout(client: &Client, name: &str) -> Result<PatchRollout, PluginError> {
    Api::<PatchRollout>::all(client.clone())
        .get_opt(name)
        .await
        .map_err(|e| PluginError::api(format!("PatchRollout {name}"), e))?
        .ok_or_else(|| {
            PluginError::Refused(format!(
                "PatchRollout {name} not found (kubectl patchpilot list shows the rollouts)"
            ))
        })
}

/// The PatchPolicy `name`; one that does not exist is bad input.
async fn get_policy(client: &Client, name: &str) -> Result<PatchPolicy, PluginError> {
    Api::<PatchPolicy>::all(client.clone())
        .get_opt(name)
        .await
        .map_err(|e| PluginError::api(format!("PatchPolicy {name}"), e))?
        .ok_or_else(|| {
            PluginError::Refused(format!(
                "PatchPolicy {name} not found (kubectl get patchpolicies lists them)"
            ))
        })
}

/// The name of a policy's current rollout.
async fn current_rollout(client: &Client, policy: &str) -> Result<String, PluginError> {
    let found = get_policy(client, policy).await?;
    found.status.and_then(|s| s.current_rollout).ok_or_else(|| {
        PluginError::Refused(format!(
            "PatchPolicy {policy} has no current rollout yet (its status names none)"
        ))
    })
}

/// The server's clock, from the `Date` of an answer: ages are measured on the clock the
/// objects' timestamps come from (a simulated one in the sandbox), not the workstation's.
/// The workstation's clock when the answer has no readable `Date`.
async fn server_now(client: &Client) -> jiff::Timestamp {
    let Ok(request) = http::Request::get("/version").body(Vec::new()) else {
        return jiff::Timestamp::now();
    };
    let date = match client.send(request.map(Into::into)).await {
        Ok(response) => response
            .headers()
            .get(http::header::DATE)
            .and_then(|d| d.to_str().ok())
            .map(str::to_owned),
        Err(_) => None,
    };
    date.and_then(|d| {
        jiff::fmt::strtime::parse("%a, %d %b %Y %H:%M:%S GMT", &d)
            .and_then(|t| t.to_datetime())
            .and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC))
            .ok()
    })
    .map_or_else(jiff::Timestamp::now, |t| t.timestamp())
}

/// Who the client is, as the API server knows it (`kubectl auth whoami`); `None` when the
/// server cannot say (SelfSubjectReview is served from Kubernetes 1.28).
async fn whoami(client: &Client) -> Option<String> {
    let body = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
    });
    let request = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&body).ok()?)
        .ok()?;
    let review: serde_json::Value = client.request(request).await.ok()?;
    review
        .pointer("/status/userInfo/username")?
        .as_str()
        .filter(|user| !user.is_empty())
        .map(str::to_owned)
}

/// Every rollout, newest first (by creation, then name).
async fn all_rollouts(client: &Client) -> Result<Vec<PatchRollout>, PluginError> {
    let mut rollouts = Api::<PatchRollout>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| PluginError::api("listing PatchRollouts", e))?
        .items;
    rollouts.sort_by(|a, b| {
        let created = |r: &PatchRollout| r.metadata.creation_timestamp.clone().map(|t| t.0);
        created(b)
            .cmp(&created(a))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    Ok(rollouts)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command};

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn kubectl_flags_go_anywhere() {
        let cli = Cli::try_parse_from([
            "kubectl-patchpilot",
            "status",
            "web-1",
            "--context",
            "prod",
            "--kubeconfig",
            "/k",
        ])
        .unwrap();
        assert_eq!(cli.connection.context.as_deref(), Some("prod"));
        assert!(matches!(cli.command, Command::Status(_)));
    }

    #[test]
    fn a_rollout_is_named_one_way() {
        assert!(Cli::try_parse_from(["kubectl-patchpilot", "approve"]).is_err());
        assert!(
            Cli::try_parse_from(["kubectl-patchpilot", "approve", "a", "--policy", "p"]).is_err()
        );
        assert!(Cli::try_parse_from(["kubectl-patchpilot", "pause", "a", "--all"]).is_err());
        assert!(Cli::try_parse_from(["kubectl-patchpilot", "pause", "--all"]).is_ok());
    }

    #[test]
    fn timeouts_read_as_durations() {
        let cli = Cli::try_parse_from([
            "kubectl-patchpilot",
            "status",
            "a",
            "-w",
            "--timeout",
            "90s",
        ])
        .unwrap();
        let Command::Status(args) = cli.command else {
            panic!("status")
        };
        assert_eq!(args.timeout, Some(std::time::Duration::from_secs(90)));
        assert!(
            Cli::try_parse_from(["kubectl-patchpilot", "status", "a", "--timeout", "soon"])
                .is_err()
        );
    }

    #[test]
    fn the_calendar_takes_windows_and_a_number_of_days() {
        let cli =
            Cli::try_parse_from(["kubectl-patchpilot", "calendar", "nights", "weekends"]).unwrap();
        let Command::Calendar(args) = cli.command else {
            panic!("calendar")
        };
        assert_eq!(args.windows, ["nights", "weekends"]);
        assert_eq!(args.days, 30);
        let cli = Cli::try_parse_from(["kubectl-patchpilot", "calendar", "--days", "400"]).unwrap();
        let Command::Calendar(args) = cli.command else {
            panic!("calendar")
        };
        assert!(args.windows.is_empty());
        assert_eq!(args.days, 400);
        for bad in ["0", "401", "soon"] {
            assert!(
                Cli::try_parse_from(["kubectl-patchpilot", "calendar", "--days", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
