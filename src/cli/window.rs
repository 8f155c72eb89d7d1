//! `patchpilot window FILE [--at RFC3339] [--next N]`: a MaintenanceWindow evaluated at an
//! instant, printed as the JSON of SPEC 4.

use std::io::{self, Write};

use jiff::Timestamp;
use patchpilot_engine::window::{Evaluation, Interval};
use serde::Serialize;

use super::{CliError, InputError, WindowArgs, read_one};
use crate::api;

/// What `patchpilot window` prints, in this key order.
#[derive(Debug, Serialize)]
struct Report<'a> {
    name: &'a str,
    at: Timestamp,
    open: bool,
    current: Option<Interval>,
    next: Vec<Interval>,
}

/// Reads the window, evaluates it at `--at` (default now) and prints the report.
pub(super) fn run(args: &WindowArgs) -> Result<(), CliError> {
    let window = read_one::<api::MaintenanceWindow>(&args.file)?;
    let name = window.metadata.name.as_deref().unwrap_or_default();
    let engine = window.spec.to_engine().map_err(|error| {
        let shown = if name.is_empty() { "(unnamed)" } else { name };
        InputError::unusable(&args.file, format!("MaintenanceWindow/{shown}"), error)
    })?;
    let at = args.at.unwrap_or_else(Timestamp::now);
    let Evaluation {
        open,
        current,
        next,
    } = engine.evaluate(at, args.next);
    let report = Report {
        name,
        at,
        open,
        current,
        next,
    };
    let mut text = serde_json::to_string_pretty(&report)
        .map_err(|error| CliError::Output(io::Error::other(error)))?;
    text.push('\n');
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).map_err(CliError::Output)?;
    out.flush().map_err(CliError::Output)
}
