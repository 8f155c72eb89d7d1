//! Shell completion through kubectl: kubectl (1.26 and later) runs the executable
//! `kubectl_complete-patchpilot` found on the `PATH` with the words typed after
//! `kubectl patchpilot`, the last being the one to complete, and reads one completion a line
//! (`value<TAB>description`) and last a line `:<directive>` (cobra's shell directives).
//!
//! Commands and flags come from the command line's own definition; rollout, policy, window
//! and context names from the cluster and the kubeconfig.

use std::process::ExitCode;

use clap::CommandFactory;
use kube::{Api, api::ListParams};

use super::{Cli, Connection};
use crate::api::{MaintenanceWindow, PatchPolicy, PatchRollout};

/// cobra's `ShellCompDirectiveNoFileComp`: complete nothing but what is printed.
const NO_FILES: u8 = 4;
/// cobra's `ShellCompDirectiveDefault`: the shell may complete file names.
const FILES: u8 = 0;

/// The flags followed by a value.
const VALUED: [&str; 7] = [
    "--policy",
    "--context",
    "--kubeconfig",
    "-o",
    "--output",
    "--timeout",
    "--days",
];

/// What to complete the last word with.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    /// The words themselves, each with a description.
    Words(Vec<(String, String)>),
    /// File names.
    Files,
    /// The rollouts of the cluster.
    Rollouts,
    /// The policies of the cluster.
    Policies,
    /// The maintenance windows of the cluster.
    Windows,
    /// The contexts of the kubeconfig.
    Contexts,
}

/// Decides what the last of `words` (the words after `kubectl patchpilot`) is completed
/// with.
fn wanted(words: &[String]) -> Wanted {
    let command = Cli::command();
    let (current, before) = words
        .split_last()
        .map_or(("", &[][..]), |(c, b)| (c.as_str(), b));
    match before.last().map(String::as_str) {
        Some("--policy") => return Wanted::Policies,
        Some("--context") => return Wanted::Contexts,
        Some("--kubeconfig") => return Wanted::Files,
        Some("--timeout" | "--days") => return Wanted::Words(Vec::new()),
        Some("-o" | "--output") => {
            return Wanted::Words(
                ["json", "yaml", "wide"]
                    .iter()
                    .map(|f| (f.to_string(), String::new()))
                    .collect(),
            );
        }
        _ => {}
    }
    let subcommand = before
        .iter()
        .find_map(|word| command.get_subcommands().find(|s| s.get_name() == word));
    let Some(subcommand) = subcommand else {
        if current.starts_with('-') {
            return Wanted::Words(flags(&command, current));
        }
        return Wanted::Words(
            command
                .get_subcommands()
                .filter(|s| s.get_name().starts_with(current) && s.get_name() != "help")
                .map(|s| {
                    let about = s.get_about().map(|a| a.to_string()).unwrap_or_default();
                    (s.get_name().to_owned(), first_sentence(&about))
                })
                .collect(),
        );
    };
    if current.starts_with('-') {
        let mut words = flags(subcommand, current);
        words.extend(flags(&command, current));
        return Wanted::Words(words);
    }
    // Windows, as many as wanted.
    if subcommand
        .get_positionals()
        .any(|p| p.get_id() == "windows")
    {
        return Wanted::Windows;
    }
    let named = subcommand
        .get_positionals()
        .any(|p| p.get_id() == "rollout");
    let position = before
        .iter()
        .position(|w| w == subcommand.get_name())
        .unwrap_or(0);
    let after = &before[position + 1..];
    // A rollout named already, or `--policy` or `--all` instead of one.
    let has_rollout = after.iter().enumerate().any(|(i, word)| {
        let value = i > 0 && VALUED.contains(&after[i - 1].as_str());
        (!word.starts_with('-') && !value) || word == "--all" || word == "--policy"
    });
    if named && !has_rollout {
        Wanted::Rollouts
    } else {
        Wanted::Words(Vec::new())
    }
}

/// The long flags of `command` that start with `prefix`, with their help.
fn flags(command: &clap::Command, prefix: &str) -> Vec<(String, String)> {
    command
        .get_arguments()
        .filter_map(|a| {
            let long = format!("--{}", a.get_long()?);
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            long.starts_with(prefix)
                .then(|| (long, first_sentence(&help)))
        })
        .collect()
}

fn first_sentence(text: &str) -> String {
    text.split(". ")
        .next()
        .unwrap_or("")
        .trim_end_matches('.')
        .to_owned()
}

/// The kubeconfig and context the words name, for the names read from the cluster.
fn connection(words: &[String]) -> Connection {
    let after = |flag: &str| {
        words
            .windows(2)
            .find(|pair| pair[0] == flag)
            .map(|pair| pair[1].clone())
    };
    Connection {
        kubeconfig: after("--kubeconfig").map(Into::into),
        context: after("--context"),
    }
}

/// Runs `kubectl_complete-patchpilot WORD…`: prints the completions and the directive.
pub fn main() -> ExitCode {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let current = words.last().cloned().unwrap_or_default();
    let (completions, directive) = match wanted(&words) {
        Wanted::Words(words) => (words, NO_FILES),
        Wanted::Files => (Vec::new(), FILES),
        Wanted::Contexts => (contexts(&connection(&words)), NO_FILES),
        found @ (Wanted::Rollouts | Wanted::Policies | Wanted::Windows) => {
            (names(&connection(&words), &found), NO_FILES)
        }
    };
    for (value, description) in completions {
        if !value.starts_with(&current) {
            continue;
        }
        if description.is_empty() {
            println!("{value}");
        } else {
            println!("{value}\t{description}");
        }
    }
    println!(":{directive}");
    ExitCode::SUCCESS
}

fn contexts(connection: &Connection) -> Vec<(String, String)> {
    let kubeconfig = match &connection.kubeconfig {
        Some(path) => kube::config::Kubeconfig::read_from(path),
        None => kube::config::Kubeconfig::read(),
    };
    kubeconfig
        .map(|k| {
            k.contexts
                .into_iter()
                .map(|c| (c.name, String::new()))
                .collect()
        })
        .unwrap_or_default()
}

/// The names of the rollouts (with their policy and phase), the policies (with their
/// version) or the windows (with their time zone); none when the cluster cannot be read, as
/// completion should never print an error.
fn names(connection: &Connection, wanted: &Wanted) -> Vec<(String, String)> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    runtime.block_on(async {
        let Ok(client) = super::client(connection).await else {
            return Vec::new();
        };
        match wanted {
            Wanted::Policies => {
                listed(client, |p: PatchPolicy| {
                    (p.metadata.name.unwrap_or_default(), p.spec.patch.version)
                })
                .await
            }
            Wanted::Windows => {
                listed(client, |w: MaintenanceWindow| {
                    (w.metadata.name.unwrap_or_default(), w.spec.time_zone)
                })
                .await
            }
            _ => {
                listed(client, |r: PatchRollout| {
                    let phase = r.status.map(|s| s.phase).unwrap_or_default();
                    let about = format!("{} {} {phase:?}", r.spec.policy, r.spec.patch.version);
                    (r.metadata.name.unwrap_or_default(), about)
                })
                .await
            }
        }
    })
}

/// Every object of kind `K`, each as a completion and its description; none on an error.
async fn listed<K>(
    client: kube::Client,
    describe: impl Fn(K) -> (String, String),
) -> Vec<(String, String)>
where
    K: kube::Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match Api::<K>::all(client).list(&ListParams::default()).await {
        Ok(list) => list.items.into_iter().map(describe).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Wanted, wanted};

    fn words(line: &str) -> Vec<String> {
        let mut words: Vec<String> = line.split(' ').map(str::to_owned).collect();
        if line.is_empty() {
            words = vec![String::new()];
        }
        words
    }

    #[test]
    fn commands_flags_and_names_are_completed() {
        let Wanted::Words(commands) = wanted(&words("st")) else {
            panic!("commands")
        };
        assert_eq!(commands.len(), 1);
        assert_eq!(commands[0].0, "status");
        assert!(commands[0].1.starts_with("A rollout as a tree"));
        let Wanted::Words(all) = wanted(&words("")) else {
            panic!("commands")
        };
        assert!(all.iter().any(|(c, _)| c == "retry"), "{all:?}");
        assert_eq!(wanted(&words("status ")), Wanted::Rollouts);
        assert_eq!(wanted(&words("status os-1 ")), Wanted::Words(vec![]));
        assert_eq!(wanted(&words("status --policy ")), Wanted::Policies);
        assert_eq!(wanted(&words("--context ")), Wanted::Contexts);
        assert_eq!(wanted(&words("list --kubeconfig ")), Wanted::Files);
        let Wanted::Words(flags) = wanted(&words("status --w")) else {
            panic!("flags")
        };
        assert_eq!(
            flags.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
            ["--watch"]
        );
        let Wanted::Words(formats) = wanted(&words("list -o ")) else {
            panic!("formats")
        };
        assert_eq!(formats.len(), 3);
        assert_eq!(wanted(&words("pause --all ")), Wanted::Words(vec![]));
        assert_eq!(wanted(&words("status --context prod ")), Wanted::Rollouts);
        assert_eq!(wanted(&words("calendar ")), Wanted::Windows);
        assert_eq!(wanted(&words("calendar nights ")), Wanted::Windows);
        assert_eq!(wanted(&words("calendar --days ")), Wanted::Words(vec![]));
        let Wanted::Words(flags) = wanted(&words("calendar --d")) else {
            panic!("flags")
        };
        assert_eq!(
            flags.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
            ["--days"]
        );
    }
}
