//! The `clrtrain` binary: parse arguments, call the library, turn errors into one message and a
//! non-zero exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use clrtrain::config::Config;
use clrtrain::progress::Verbosity;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Train(args) => train(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn train(args: &cli::TrainArgs) -> clrtrain::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.apply(&args.overrides());
    let verbosity = if args.quiet {
        Verbosity::Quiet
    } else {
        Verbosity::Auto
    };
    clrtrain::run::train(&config, verbosity).map(|_| ())
}
