//! The `clrtrain` binary: parse the arguments, hand them to the subcommand, turn an error into
//! one message and a non-zero exit code.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;
use clrtrain::Error;
use clrtrain::interrupt::EXIT_AT_ONCE;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match &cli.command {
        cli::Command::Train(args) => commands::train::run(args),
        cli::Command::FindLr(args) => commands::find_lr::run(args),
        cli::Command::Evaluate(args) => commands::evaluate::run(args),
        cli::Command::Predict(args) => commands::predict::run(args),
        cli::Command::Bench(args) => commands::bench::run(args),
        cli::Command::Schedule(args) => commands::schedule::run(args),
        cli::Command::Compare(args) => commands::compare::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ Error::Interrupted { .. }) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_AT_ONCE as u8)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
