//! The `clrtrain` binary: parse arguments, call the library, turn errors into one message and a
//! non-zero exit code.

mod cli;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use clrtrain::config::{Config, DataConfig, Overrides};
use clrtrain::interrupt::Interrupt;
use clrtrain::progress::Verbosity;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Train(args) => train(&args),
        cli::Command::FindLr(args) => find_lr(&args),
        cli::Command::Evaluate(args) => evaluate(&args),
        cli::Command::Predict(args) => predict(&args),
        cli::Command::Bench(args) => bench(&args),
        cli::Command::Schedule(args) => schedule(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ clrtrain::Error::Interrupted { .. }) => {
            eprintln!("{e}");
            ExitCode::from(clrtrain::interrupt::EXIT_AT_ONCE as u8)
        }
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
    Verbosity::from_quiet(common.quiet)
}

fn train(args: &cli::TrainArgs) -> clrtrain::Result<()> {
    let overrides = args.overrides();
    let interrupt = Interrupt::on_signals()?;
    let Some(dir) = &args.resume else {
        let config = load_config(args.common.config.as_deref(), &overrides)?;
        return clrtrain::run::train(&config, &interrupt, verbosity(&args.common)).map(|_| ());
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
    config.output.dir = checkpoint.output_dir();
    let verbosity = verbosity(&args.common);
    clrtrain::run::resume(&checkpoint, &config, &interrupt, verbosity).map(|_| ())
}

fn evaluate(args: &cli::EvaluateArgs) -> clrtrain::Result<()> {
    let options = clrtrain::evaluate::EvaluateOptions {
        model: args.model.clone(),
        data: DataConfig {
            path: args.data.clone(),
            download: !args.no_download,
            test_per_class: args.test_per_class,
            ..DataConfig::default()
        },
        backend: args.backend,
        batch_size: args.batch_size.max(1),
        output: args.output.clone(),
    };
    clrtrain::evaluate::evaluate(&options, Verbosity::from_quiet(args.quiet)).map(|_| ())
}

fn bench(args: &cli::BenchArgs) -> clrtrain::Result<()> {
    let options = clrtrain::bench::BenchOptions {
        backend: args.backend,
        batch_size: args.batch_size,
        steps: args.steps,
        warmup: args.warmup,
        eval_batch_size: args.eval_batch_size,
    };
    let report = clrtrain::bench::bench(&options, Verbosity::Auto)?;
    if args.json {
        let json = serde_json::to_value(&report).unwrap_or_default();
        println!("{}", clrtrain::evaluate::pretty(&json).trim_end());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

fn predict(args: &cli::PredictArgs) -> clrtrain::Result<()> {
    use clrtrain::predict;
    let predictions = predict::predict(&args.model, &args.images, args.top_k, args.backend)?;
    if args.json {
        println!(
            "{}",
            clrtrain::evaluate::pretty(&predict::to_json(&predictions)).trim_end()
        );
    } else {
        print!("{}", predict::to_text(&predictions));
    }
    Ok(())
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
