//! `clrtrain train` end to end: data → backend → model → training → report, plots and weights.

use std::sync::Arc;

use burn::module::Module;
use serde_json::json;

use crate::backend;
use crate::checkpoint::{self, Checkpoint};
use crate::config::Config;
use crate::data::{self, ImageSet, augment::Augment, loader, mean::mean_image};
use crate::error::{Error, Result};
use crate::history::{self, History};
use crate::model::{ARCHITECTURE, MiniGoogLeNet};
use crate::outputs::{self, OutputDir};
use crate::plot;
use crate::progress::{TrainProgress, Verbosity};
use crate::report::ClassificationReport;
use crate::schedule::{CycleSummary, CyclicLrScheduler, Schedule};
use crate::train::{self, FitData, FitSettings, Trainer};

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub history: History,
    pub report: ClassificationReport,
    /// The backend that ran it, as printed at start.
    pub backend: String,
    pub output: OutputDir,
}

fn say(verbosity: Verbosity, message: &str) {
    if verbosity != Verbosity::Quiet {
        println!("{message}");
    }
}

/// Run a whole training as configured. Files appear in the output folder as the run goes, and
/// stay there when it fails (a diverging loss, say).
pub fn train(config: &Config, verbosity: Verbosity) -> Result<RunSummary> {
    train_from(config, None, verbosity)
}

/// Go on with the run `checkpoint` was saved from, under `config` (its own config, where the
/// caller may have raised the number of epochs).
pub fn resume(
    checkpoint: &Checkpoint,
    config: &Config,
    verbosity: Verbosity,
) -> Result<RunSummary> {
    train_from(config, Some(checkpoint), verbosity)
}

fn train_from(
    config: &Config,
    checkpoint: Option<&Checkpoint>,
    verbosity: Verbosity,
) -> Result<RunSummary> {
    config.validate()?;
    let out = OutputDir::create(&config.output.dir)?;
    out.write(outputs::CONFIG, &config.to_toml())?;
    let data = data::load(&config.data)?;
    check_batch_size(config, data.train.len())?;
    let selected = backend::select(config.training.backend)?;
    let schedule = config.schedule(data.train.len());
    say(verbosity, &format!("backend: {}", selected.description));
    say(verbosity, &format!("data: {}", data.description));
    say(
        verbosity,
        &describe_schedule(config, &schedule, data.train.len()),
    );

    let t = &config.training;
    let mean = Arc::new(mean_image(&data.train));
    let mut trainer = Trainer::new(data.train.classes.len(), &selected.device, t.seed);
    let mut scheduler = CyclicLrScheduler::new(schedule);
    let mut settings = fit_settings(config, &data.train);
    let mut history = History::default();
    if let Some(checkpoint) = checkpoint {
        history = restore(
            checkpoint,
            &mut trainer,
            &mut scheduler,
            &mut settings,
            verbosity,
        )?;
    }
    let fit_data = FitData {
        train: Arc::new(data.train),
        test: &data.test,
        mean: mean.clone(),
    };
    let lr_title = format!("Learning rate ({})", schedule.method());
    let progress = TrainProgress::new(verbosity, t.epochs);
    progress.resume_at(settings.first_epoch);
    let result = train::fit(
        &mut trainer,
        &mut scheduler,
        &fit_data,
        &settings,
        &mut history,
        &progress,
        |h, trainer, scheduler| {
            write_history(&out, h, &lr_title)?;
            checkpoint::save(out.dir(), config, trainer, scheduler, h, h.epochs.len())
        },
    );
    progress.finish();
    let eval = result.inspect_err(|_| {
        // Keep what the run recorded up to the failure; the failure itself is what is reported.
        let _ = write_history(&out, &history, &lr_title);
    })?;

    let report = write_results(&out, &data.test, &eval.predictions, &mean, trainer.model())?;
    say(verbosity, &format!("\n{}", report.to_text()));
    say(
        verbosity,
        &format!("outputs written to {}", out.dir().display()),
    );
    Ok(RunSummary {
        history,
        report,
        backend: selected.description,
        output: out,
    })
}

/// Put a checkpoint's state back and say so; returns the history so far.
fn restore(
    checkpoint: &Checkpoint,
    trainer: &mut Trainer,
    scheduler: &mut CyclicLrScheduler,
    settings: &mut FitSettings,
    verbosity: Verbosity,
) -> Result<History> {
    checkpoint.restore(trainer, scheduler)?;
    settings.first_epoch = checkpoint.state.epochs_done;
    let message = format!(
        "resuming after epoch {} (iteration {}) from {}",
        settings.first_epoch,
        scheduler.iteration(),
        checkpoint.dir.display()
    );
    say(verbosity, &message);
    Ok(checkpoint.state.history.clone())
}

/// Predictions, the classification report and the model, after the last epoch.
fn write_results(
    out: &OutputDir,
    test: &ImageSet,
    predictions: &[usize],
    mean: &[f32],
    model: &MiniGoogLeNet,
) -> Result<ClassificationReport> {
    let classes = &test.classes;
    let y_true: Vec<usize> = test.labels.iter().map(|&l| l as usize).collect();
    let report = ClassificationReport::new(&y_true, predictions, classes);
    out.write(
        outputs::PREDICTIONS_CSV,
        &history::predictions_csv(&y_true, predictions, classes),
    )?;
    out.write(outputs::REPORT_TXT, &report.to_text())?;
    out.write(outputs::REPORT_JSON, &pretty(&report.to_json()))?;
    save_model(out, model, classes, mean)?;
    Ok(report)
}

/// A batch larger than the training set would give no iteration at all.
pub fn check_batch_size(config: &Config, train_size: usize) -> Result<()> {
    let batch_size = config.training.batch_size;
    if batch_size > train_size {
        return Err(Error::Config(format!(
            "training.batch_size = {batch_size} is larger than the {train_size} training images"
        )));
    }
    Ok(())
}

fn describe_schedule(config: &Config, schedule: &Schedule, train_size: usize) -> String {
    let t = &config.training;
    let per_epoch = loader::batches_per_epoch(train_size, t.batch_size) as u64;
    let warning = CycleSummary::new(schedule, t.epochs as u64 * per_epoch)
        .mid_cycle_warning(per_epoch)
        .map(|w| format!("\nwarning: {w}"))
        .unwrap_or_default();
    format!(
        "schedule: {}; {} epochs of {per_epoch} iterations, batch {}{warning}",
        schedule.describe(),
        t.epochs,
        t.batch_size
    )
}

fn fit_settings(config: &Config, train: &ImageSet) -> FitSettings {
    let t = &config.training;
    let a = &config.augment;
    FitSettings {
        epochs: t.epochs,
        batch_size: t.batch_size,
        eval_batch_size: t.eval_batch_size,
        seed: t.seed,
        augment: Augment::new(a.shift, a.flip, train.height, train.width),
        momentum: config.momentum(),
        first_epoch: 0,
    }
}

/// History, learning rates and both plots, rewritten after every epoch.
fn write_history(out: &OutputDir, h: &History, lr_title: &str) -> Result<()> {
    out.write(outputs::HISTORY_CSV, &history::history_csv(&h.epochs))?;
    out.write(outputs::LR_CSV, &history::lr_csv(&h.lrs, &h.momenta))?;
    out.write_with(outputs::TRAINING_PNG, |p| plot::plot_training(&h.epochs, p))?;
    out.write_with(outputs::LR_PNG, |p| {
        plot::plot_lr(&h.lrs, history::cycling(&h.momenta), lr_title, p)
    })
}

/// Weights as burnpack plus what is needed to use them.
fn save_model(
    out: &OutputDir,
    model: &MiniGoogLeNet,
    classes: &[String],
    mean: &[f32],
) -> Result<()> {
    out.write_with(outputs::MODEL, |p| {
        model.clone().save_file(p).map_err(|e| Error::Model {
            path: p.to_path_buf(),
            message: e.to_string(),
        })
    })?;
    let meta = json!({
        "architecture": ARCHITECTURE,
        "classes": classes,
        "input": {"height": data::INPUT_SIZE, "width": data::INPUT_SIZE, "channels": data::CHANNELS},
        "mean_image_hwc": mean,
        "weights": outputs::MODEL,
    });
    out.write(outputs::MODEL_META, &pretty(&meta))
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}
