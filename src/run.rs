//! `clrtrain train` end to end: data → backend → model → training → report, plots and weights.

use std::sync::Arc;

use crate::backend;
use crate::checkpoint::{self, Checkpoint, Parts, State};
use crate::config::Config;
use crate::data::{self, ImageSet, augment::Augment, loader, mean::mean_image};
use crate::error::{Error, Result};
use crate::evaluate::write_evaluation;
use crate::history::{self, History};
use crate::interrupt::Interrupt;
use crate::model::MiniGoogLeNet;
use crate::outputs::{self, OutputDir};
use crate::plot;
use crate::progress::{TrainProgress, Verbosity};
use crate::report::ClassificationReport;
use crate::saved_model::{self, InputSize, ModelInfo};
use crate::schedule::{CycleSummary, CyclicLrScheduler, Schedule};
use crate::train::{self, FitData, FitEnd, FitSettings, Position, Trainer};

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub history: History,
    pub report: ClassificationReport,
    /// The backend that ran it, as printed at start.
    pub backend: String,
    pub output: OutputDir,
}

/// Run a whole training as configured. Files appear in the output folder as the run goes, and
/// stay there when it fails (a diverging loss, say). When `interrupt` is set, the run stops
/// after the current batch, writes a checkpoint and returns [`Error::Interrupted`].
pub fn train(config: &Config, interrupt: &Interrupt, verbosity: Verbosity) -> Result<RunSummary> {
    train_from(config, None, interrupt, verbosity)
}

/// Go on with the run `checkpoint` was saved from, under `config` (its own config, where the
/// caller may have raised the number of epochs).
pub fn resume(
    checkpoint: &Checkpoint,
    config: &Config,
    interrupt: &Interrupt,
    verbosity: Verbosity,
) -> Result<RunSummary> {
    train_from(config, Some(checkpoint), interrupt, verbosity)
}

fn train_from(
    config: &Config,
    checkpoint: Option<&Checkpoint>,
    interrupt: &Interrupt,
    verbosity: Verbosity,
) -> Result<RunSummary> {
    config.validate()?;
    let out = OutputDir::create(&config.output.dir)?;
    out.write(outputs::CONFIG, &config.to_toml())?;
    let data = data::load(&config.data)?;
    check_batch_size(config, data.train.len())?;
    let selected = backend::select(config.training.backend)?;
    let schedule = config.schedule(data.train.len());
    verbosity.say(&format!("backend: {}", selected.description));
    verbosity.say(&format!("data: {}", data.description));
    verbosity.say(&describe_schedule(config, &schedule, data.train.len()));

    let t = &config.training;
    let mean = Arc::new(mean_image(&data.train));
    let info = model_info(&data.train, &mean);
    let mut trainer = Trainer::new(data.train.classes.len(), &selected.device, t.seed);
    let mut scheduler = CyclicLrScheduler::new(schedule);
    let mut settings = fit_settings(config, &data.train);
    let mut history = History::default();
    if let Some(checkpoint) = checkpoint {
        let restored = Restored {
            trainer: &mut trainer,
            scheduler: &mut scheduler,
            settings: &mut settings,
        };
        history = restore(checkpoint, restored, (&info, &config.data.path), verbosity)?;
    }
    let fit_data = FitData {
        train: Arc::new(data.train),
        test: &data.test,
        mean: mean.clone(),
    };
    let lr_title = format!("Learning rate ({})", schedule.method());
    let progress = TrainProgress::new(verbosity, t.epochs);
    progress.resume_at(settings.start.epochs_done);
    let mut last_checkpoint = None;
    let result = train::fit(
        &mut trainer,
        &mut scheduler,
        &fit_data,
        &settings,
        &mut history,
        &progress,
        interrupt,
        |h, trainer, scheduler, position| {
            write_history(&out, h, &lr_title)?;
            let parts = Parts {
                config,
                trainer,
                scheduler,
                info: &info,
            };
            let state = State {
                position: position.clone(),
                history: h.clone(),
            };
            last_checkpoint = Some(checkpoint::save(out.dir(), &parts, &state)?);
            Ok(())
        },
    );
    progress.finish();
    let end = result.inspect_err(|_| {
        // Keep what the run recorded up to the failure; the failure itself is what is reported.
        let _ = write_history(&out, &history, &lr_title);
    })?;
    let eval = match end {
        FitEnd::Finished(eval) => eval,
        FitEnd::Interrupted { iteration } => {
            return Err(Error::Interrupted {
                iteration,
                checkpoint: last_checkpoint.unwrap_or_else(|| out.path(checkpoint::DIR)),
                output: out.dir().to_path_buf(),
            });
        }
    };
    // a run resumed after its last epoch has no history files written by this process yet
    write_history(&out, &history, &lr_title)?;
    let report = write_evaluation(&out, &data.test, &eval.predictions)?;
    save_model(&out, trainer.model(), &info)?;
    verbosity.say(&format!("\n{}", report.to_text()));
    verbosity.say(&format!("outputs written to {}", out.dir().display()));
    Ok(RunSummary {
        history,
        report,
        backend: selected.description,
        output: out,
    })
}

/// What travels with the weights: classes, input size, mean image.
fn model_info(train: &ImageSet, mean: &[f32]) -> ModelInfo {
    let input = InputSize {
        height: train.height,
        width: train.width,
        channels: train.channels,
    };
    ModelInfo::new(train.classes.clone(), input, mean.to_vec())
}

/// What a checkpoint is restored into.
struct Restored<'a> {
    trainer: &'a mut Trainer,
    scheduler: &'a mut CyclicLrScheduler,
    settings: &'a mut FitSettings,
}

/// Put a checkpoint's state back and say so; returns the history so far. The data must be the
/// run's: the same classes and mean image (so the same training images).
fn restore(
    checkpoint: &Checkpoint,
    into: Restored,
    (info, data): (&ModelInfo, &std::path::Path),
    verbosity: Verbosity,
) -> Result<History> {
    let saved = checkpoint.restore(into.trainer, into.scheduler)?;
    if saved.classes != info.classes || saved.mean_image_hwc != info.mean_image_hwc {
        return Err(Error::Config(format!(
            "the dataset at {} is not the one the checkpoint was trained on (other classes or \
             other training images); resuming on it would not continue that run",
            data.display()
        )));
    }
    into.settings.start = checkpoint.state.position.clone();
    let position = &checkpoint.state.position;
    let within = match position.batches_done {
        0 => String::new(),
        b => format!(" and {b} batches"),
    };
    let message = format!(
        "resuming after epoch {}{within} (iteration {}) from {}",
        position.epochs_done,
        into.scheduler.iteration(),
        checkpoint.dir.display()
    );
    verbosity.say(&message);
    Ok(checkpoint.state.history.clone())
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

/// The loop settings `config` asks for, on `train`.
pub fn fit_settings(config: &Config, train: &ImageSet) -> FitSettings {
    let t = &config.training;
    let a = &config.augment;
    FitSettings {
        epochs: t.epochs,
        batch_size: t.batch_size,
        eval_batch_size: t.eval_batch_size,
        seed: t.seed,
        augment: Augment::new(a.shift, a.flip, train.height, train.width),
        momentum: config.momentum(),
        start: Position::default(),
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

/// The model file, with what is needed to use it.
fn save_model(out: &OutputDir, model: &MiniGoogLeNet, info: &ModelInfo) -> Result<()> {
    out.write_with(outputs::MODEL, |p| saved_model::save(p, model, info))
}
