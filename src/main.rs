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
    let overrides = args.overrides();
    let Some(dir) = &args.resume else {
        let config = load_config(args.common.config.as_deref(), &overrides)?;
        return clrtrain::run::train(&config, verbosity(&args.common)).map(|_| ());
    };
    let refused = overrides.changing_the_run();
    if !refused.is_empty() {
        return Err(clrtrain::Error::Config(format!(
            "{} cannot change on --resume (the run would no longer be the one that was saved)",
            refused.join(", ")
        )));
    }
    let checkpoint = clrtrain::checkpoint::load(dir)?;
    let mut config = checkpoint.config.clone();
    config.apply(&overrides);
    // outputs go on next to the checkpoint, wherever the run was started from
    config.output.dir = checkpoint
        .dir
        .parent()
        .map_or(dir.clone(), Path::to_path_buf);
    clrtrain::run::resume(&checkpoint, &config, verbosity(&args.common)).map(|_| ())
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
