//! The `clrtrain` binary: parse arguments, call the library, turn errors into one message and a
//! non-zero exit code.

mod cli;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use clrtrain::config::{Config, Overrides};
use clrtrain::progress::Verbosity;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Train(args) => train(&args),
        cli::Command::FindLr(args) => find_lr(&args),
        cli::Command::Schedule(args) => schedule(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The config file (or the reference defaults) with the command line's overrides.
fn load_config(file: Option<&Path>, overrides: &Overrides) -> clrtrain::Result<Config> {
    let mut config = match file {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.apply(overrides);
    Ok(config)
}

fn verbosity(common: &cli::CommonArgs) -> Verbosity {
    if common.quiet {
        Verbosity::Quiet
    } else {
        Verbosity::Auto
    }
}

fn train(args: &cli::TrainArgs) -> clrtrain::Result<()> {
    let config = load_config(args.common.config.as_deref(), &args.overrides())?;
    clrtrain::run::train(&config, verbosity(&args.common)).map(|_| ())
}

fn find_lr(args: &cli::FindLrArgs) -> clrtrain::Result<()> {
    let config = load_config(args.common.config.as_deref(), &args.common.overrides())?;
    let test = args.range_test();
    let write_config = args.write_config.as_deref();
    clrtrain::find_lr::find_lr(&config, &test, write_config, verbosity(&args.common)).map(|_| ())
}

fn schedule(args: &cli::ScheduleArgs) -> clrtrain::Result<()> {
    let config = load_config(args.config.as_deref(), &args.overrides())?;
    let preview = clrtrain::preview::preview(&config, args.train_size, args.iterations)?;
    preview.write(args.csv.as_deref(), args.plot.as_deref())?;
    println!("{}", preview.describe());
    Ok(())
}
