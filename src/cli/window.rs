//! `patchpilot window FILE [--at RFC3339] [--next N] [-o json|text]`: a MaintenanceWindow
//! evaluated at an instant, printed as the JSON of SPEC 4 or as text for people (`text`).
//!
//! When the 400-day horizon holds fewer intervals than `--next` asks for, the text says so
//! under the intervals; with JSON, whose bytes SPEC 4 fixes, a `note:` line on standard error
//! says so and the exit status stays 0.

mod text;

use std::io::{self, Write};

use jiff::Timestamp;
use patchpilot_engine::window::{Evaluation, Interval};
use serde::Serialize;

use super::{CliError, Format, WindowArgs, read_one_checked};
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
    // Every mistake at once, one a line: the schema's and the operator's own reading's.
    let (window, engine) = read_one_checked(&args.file, |window: &api::MaintenanceWindow| {
        window.spec.to_engine_reporting_all()
    })?;
    let name = window.metadata.name.as_deref().unwrap_or_default();
    let at = args.at.unwrap_or_else(Timestamp::now);
    let evaluation = engine.evaluate(at, args.next);
    let found = evaluation.next.len();
    let output = match args.output {
        Format::Json => {
            let Evaluation {
                open,
                current,
                next,
            } = evaluation;
            let report = Report {
                name,
                at,
                open,
                current,
                next,
            };
            let mut output = serde_json::to_string_pretty(&report)
                .map_err(|error| CliError::Output(io::Error::other(error)))?;
            output.push('\n');
            if found < args.next {
                eprintln!("note: {}", text::fewer(found, args.next));
            }
            output
        }
        Format::Text => text::render(&text::Shown {
            name,
            spec: &window.spec,
            window: &engine,
            at,
            evaluation: &evaluation,
            asked: args.next,
        }),
    };
    let mut out = io::stdout().lock();
    out.write_all(output.as_bytes()).map_err(CliError::Output)?;
    out.flush().map_err(CliError::Output)
}
