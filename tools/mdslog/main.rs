//! The `mdslog` command-line tool, built only on the library's public API.
//!
//! | module | what |
//! |---|---|
//! | `cli` | the commands and their arguments, help and examples (clap) |
//! | `inspect` | verify, stats, dump, tree, history, show, repair: read-only except repair |
//! | `scripted` | volume-set, snapshot, branch, demo: small changes through the `Store` API |
//! | `generate` | a synthetic workload |
//! | `sync` | sync, export, import, cursors: exchanging a volume set's records between stores |
//! | `ship` | ship, follow, status: replication by shipping segments to a follower |
//! | `records` | event summaries, which records touch an object, an index of the whole log |
//! | `resolve` | names and id prefixes wherever an id is asked for |
//! | `output` | errors and exit codes, times, sizes, progress bars, the JSON record line |

mod cli;
mod generate;
mod inspect;
mod output;
mod records;
mod resolve;
mod scripted;
mod ship;
mod sync;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, Shell};
use crate::output::{CmdResult, EXIT_ERROR};

/// Parses the command line. When a required argument is missing and `MDSLOG_DIR` is set,
/// the store directory was probably left out in front of other positional arguments
/// (`mdslog history ID`): parse again with it inserted right after the command's name.
fn parse() -> Cli {
    let args: Vec<OsString> = std::env::args_os().collect();
    match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            if e.kind() == ErrorKind::MissingRequiredArgument {
                if let Some(dir) = std::env::var_os("MDSLOG_DIR").filter(|d| !d.is_empty()) {
                    if let Some(at) = after_command_name(&args) {
                        let mut with = args.clone();
                        with.insert(at, dir);
                        if let Ok(cli) = Cli::try_parse_from(&with) {
                            return cli;
                        }
                    }
                }
            }
            e.exit()
        }
    }
}

/// The index in `args` just after the (sub)command names, e.g. after `volume-set list`.
fn after_command_name(args: &[OsString]) -> Option<usize> {
    let mut cmd = Cli::command();
    let mut at = None;
    for (i, a) in args.iter().enumerate().skip(1) {
        let a = a.to_str()?;
        if a.starts_with('-') {
            continue;
        }
        let sub = cmd.find_subcommand(a)?.clone();
        at = Some(i + 1);
        if !sub.has_subcommands() {
            break;
        }
        cmd = sub;
    }
    at
}

fn run(cli: Cli) -> CmdResult {
    match cli.command {
        Command::Verify { store, json } => inspect::verify(&store.dir, json),
        Command::Stats { store, json } => inspect::stats(&store.dir, json),
        Command::Dump(a) => inspect::dump(&a),
        Command::Tree {
            store,
            volume_set,
            at,
            full,
            json,
        } => inspect::tree(&store.dir, &volume_set, at.as_deref(), full, json),
        Command::History {
            store,
            id,
            all,
            json,
        } => inspect::history(&store.dir, &id, all, json),
        Command::Show {
            store,
            id,
            at,
            json,
        } => inspect::show(&store.dir, &id, at.as_deref(), json),
        Command::Repair {
            store,
            salvage,
            yes,
        } => inspect::repair(&store.dir, salvage, yes),
        Command::VolumeSet(c) => scripted::volume_set(c),
        Command::Snapshot(a) => scripted::snapshot(a),
        Command::Branch(c) => scripted::branch(c),
        Command::Generate(a) => generate::generate(&a),
        Command::Sync(a) => sync::sync(a),
        Command::Export(a) => sync::export(a),
        Command::Import(a) => sync::import(a),
        Command::Cursors { store, json } => sync::cursors(&store.dir, json),
        Command::Checkpoint { store, json } => scripted::checkpoint(&store.dir, json),
        Command::Ship(a) => ship::ship(&a),
        Command::Follow(a) => ship::follow(&a),
        Command::Status(a) => ship::status(&a),
        Command::Completions { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut Cli::command(), "mdslog", &mut std::io::stdout());
            Ok(output::EXIT_OK)
        }
        Command::Demo { dir } => scripted::demo(dir),
    }
}

fn main() -> ExitCode {
    match run(parse()) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("mdslog: {f}");
            ExitCode::from(if f.code == 0 { EXIT_ERROR } else { f.code })
        }
    }
}
