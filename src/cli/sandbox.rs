//! `patchpilot sandbox`: a simulated cluster, run to its end or served to kubectl.

use std::path::Path;

use super::{CliError, InputError, SandboxArgs};
use crate::sandbox::{
    Options, Sandbox,
    apiserver::Audit,
    run::{self, RunOptions},
    scenario::Scenario,
};

/// Runs `patchpilot sandbox`.
pub fn run(args: &SandboxArgs) -> Result<(), CliError> {
    // The progress lines are the sandbox's output; the operator's own log (warnings of
    // failed reconciles, and more) goes to standard error when `RUST_LOG` asks for it.
    if std::env::var_os("RUST_LOG").is_some() {
        super::init_logging(super::LogFormat::Text);
    }
    let (scenario, file) = match &args.scenario {
        Some(file) => (Scenario::read(file)?, file.as_path()),
        None => (Scenario::built_in(), Path::new("(built-in scenario)")),
    };
    if let Some(address) = args.serve
        && !address.ip().is_loopback()
    {
        return Err(CliError::Flag {
            flag: "--serve",
            message: format!(
                "{address} is not a loopback address; the sandbox serves on 127.0.0.1 or ::1 only"
            ),
        });
    }
    if args.speed.is_some_and(|s| !(s > 0.0 && s.is_finite())) {
        return Err(CliError::Flag {
            flag: "--speed",
            message: "must be a positive number, like 60".into(),
        });
    }
    let audit = match &args.audit_log {
        Some(path) => Some(Audit::to_file(path).map_err(|source| CliError::File {
            path: path.clone(),
            source,
        })?),
        None => None,
    };
    // Run to its end, the sandbox lives on tokio's paused clock, which jumps to the next timer
    // whenever every task waits. Served to people, it runs on real time (sped up if asked).
    let runtime = if args.serve.is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
    }
    .map_err(CliError::Output)?;
    runtime.block_on(async {
        let options = Options {
            audit,
            speed: args.speed,
            ..crate::sandboxed::options()
        };
        let sandbox = Sandbox::new(scenario, options).map_err(|error| {
            InputError::unusable(file, error.object.clone(), error.message.clone())
        })?;
        let options = RunOptions {
            serve: args.serve,
            kubeconfig_out: args.kubeconfig_out.clone(),
            report: args.report.clone(),
            operator: (!args.without_operator).then(crate::sandboxed::operator),
            verbose: args.verbose,
        };
        run::run(sandbox, options).await.map_err(CliError::Run)?;
        Ok(())
    })
}
