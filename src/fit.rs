//! The training loop: SGD with momentum whose learning rate the CLR schedule sets before every
//! batch, evaluation on the test set after every epoch, a checkpoint hook after every epoch
//! (and when a stop is requested mid-epoch).

use std::sync::Arc;
use std::time::Instant;

use burn::lr_scheduler::LrScheduler;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::console::TrainProgress;
use crate::data::ImageSet;
use crate::data::augment::Augment;
use crate::data::loader::{self, Batch, EpochPlan};
use crate::error::{Error, Result};
use crate::history::{EpochRecord, History};
use crate::inference::{self, Evaluation};
use crate::interrupt::Interrupt;
use crate::schedule::{CyclicLrScheduler, Momentum};
use crate::trainer::{StepOutput, Trainer};

/// Batches between two reads of the loss from the device: the device runs ahead in between.
const READ_EVERY: usize = 8;

/// The data a run trains and evaluates on.
pub struct FitData<'a> {
    pub train: Arc<ImageSet>,
    pub test: &'a ImageSet,
    /// Mean image of the training set (HWC), subtracted from every image.
    pub mean: Arc<Vec<f32>>,
}

/// Loop settings.
#[derive(Debug, Clone)]
pub struct FitSettings {
    pub epochs: usize,
    pub batch_size: usize,
    pub eval_batch_size: usize,
    pub seed: u64,
    pub augment: Augment,
    /// SGD momentum per iteration.
    pub momentum: Momentum,
}

impl FitSettings {
    /// The settings `config` asks for, on training images of `train`'s size.
    pub fn new(config: &Config, train: &ImageSet) -> Self {
        let t = &config.training;
        let a = &config.augment;
        Self {
            epochs: t.epochs,
            batch_size: t.batch_size,
            eval_batch_size: t.eval_batch_size,
            seed: t.seed,
            augment: Augment::new(a.shift, a.flip, train.height, train.width),
            momentum: config.momentum(),
        }
    }

    /// Epoch `epoch` (0-based) of training batches, from batch `skip` on.
    pub fn epoch_plan(&self, epoch: usize, skip: usize) -> EpochPlan {
        EpochPlan {
            seed: self.seed,
            epoch,
            batch_size: self.batch_size,
            augment: self.augment,
            skip,
        }
    }
}

/// How far a run has come: whole epochs, then batches of the next one and their sums.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub epochs_done: usize,
    /// Batches of epoch `epochs_done + 1` already trained (0 between epochs).
    pub batches_done: usize,
    /// Loss and accuracy sums of those batches.
    pub sums: EpochSums,
}

/// Everything a run carries from batch to batch: what a checkpoint saves.
pub struct TrainState {
    pub trainer: Trainer,
    pub scheduler: CyclicLrScheduler,
    pub history: History,
    pub position: Position,
}

impl TrainState {
    /// A run that has not started.
    pub fn new(trainer: Trainer, scheduler: CyclicLrScheduler) -> Self {
        Self {
            trainer,
            scheduler,
            history: History::default(),
            position: Position::default(),
        }
    }
}

/// Who watches a run: the progress display, and the stop request it obeys.
#[derive(Clone, Copy)]
pub struct Watch<'a> {
    pub progress: &'a TrainProgress,
    pub interrupt: &'a Interrupt,
}

/// How [`fit`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum FitEnd {
    /// Every epoch trained: the evaluation after the last one.
    Finished(Evaluation),
    /// Stopped on request, after a checkpoint at this iteration.
    Interrupted { iteration: u64 },
}

/// Running sums of an epoch, fed from bulk reads of the device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochSums {
    pub loss: f64,
    pub correct: f64,
    pub batches: usize,
    pub images: usize,
    /// Seconds spent on the epoch before an interruption.
    pub seconds: f64,
}

impl EpochSums {
    /// Read `pending` back from the device in one go and add it up; a non-finite loss stops the
    /// run, naming its iteration and learning rate.
    fn drain(&mut self, pending: &mut Vec<StepOutput>, batch_size: usize) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let outputs = std::mem::take(pending);
        let steps: Vec<(u64, f64)> = outputs.iter().map(|o| (o.iteration, o.lr)).collect();
        let (losses, correct): (Vec<_>, Vec<_>) =
            outputs.into_iter().map(|o| (o.loss, o.correct)).unzip();
        let losses: Vec<f64> = Tensor::cat(losses, 0).into_data().iter::<f64>().collect();
        let correct = Tensor::cat(correct, 0).sum().into_scalar::<i64>() as f64;
        if let Some(k) = losses.iter().position(|l| !l.is_finite()) {
            let (iteration, lr) = steps[k];
            return Err(Error::Diverged {
                iteration,
                lr,
                loss: losses[k],
            });
        }
        self.loss += losses.iter().sum::<f64>();
        self.correct += correct;
        self.batches += losses.len();
        self.images += losses.len() * batch_size;
        Ok(())
    }

    fn means(&self) -> (f64, f64) {
        (
            self.loss / self.batches.max(1) as f64,
            self.correct / self.images.max(1) as f64,
        )
    }
}

/// What [`train_epoch`] trains on, besides the state.
pub struct EpochRun<'a> {
    pub batches: crossbeam_channel::Receiver<Batch>,
    /// Batches in a whole epoch.
    pub per_epoch: usize,
    pub settings: &'a FitSettings,
    pub watch: Watch<'a>,
}

/// Train on every batch the loader sends, adding to `totals`; LRs and momenta go into the
/// history as they are used. Returns whether it stopped early on request (its sums then cover
/// the batches trained). This is the loop [`fit`] runs every epoch (and `clrtrain bench` times).
pub fn train_epoch(state: &mut TrainState, run: EpochRun, totals: &mut EpochSums) -> Result<bool> {
    let (settings, progress) = (run.settings, run.watch.progress);
    let mut pending = Vec::with_capacity(READ_EVERY);
    for batch in run.batches {
        let iteration = state.scheduler.iteration();
        let momentum = settings.momentum.at(state.scheduler.schedule(), iteration);
        let lr = state.scheduler.step();
        pending.push(state.trainer.step(batch, iteration, lr, momentum));
        state.history.lrs.push(lr);
        state.history.momenta.push(momentum);
        if pending.len() == READ_EVERY {
            totals.drain(&mut pending, settings.batch_size)?;
            let (loss, accuracy) = totals.means();
            progress.batch(totals.batches, loss, accuracy, lr);
        }
        let trained = totals.batches + pending.len();
        if run.watch.interrupt.requested() && trained < run.per_epoch {
            totals.drain(&mut pending, settings.batch_size)?;
            return Ok(true);
        }
    }
    totals.drain(&mut pending, settings.batch_size)?;
    Ok(false)
}

/// Train from `state.position` to `settings.epochs` epochs, evaluating on the test set after
/// each. The state (history included) grows as the run goes, also when it fails.
/// `on_checkpoint` sees the state after every epoch, and mid-epoch when a stop is requested, so
/// it can be saved.
pub fn fit(
    state: &mut TrainState,
    data: &FitData,
    settings: &FitSettings,
    watch: Watch,
    mut on_checkpoint: impl FnMut(&TrainState) -> Result<()>,
) -> Result<FitEnd> {
    let per_epoch = loader::batches_per_epoch(data.train.len(), settings.batch_size);
    let evaluate_now = |trainer: &Trainer| {
        let model = trainer.model();
        inference::evaluate(model, data.test, &data.mean, settings.eval_batch_size)
    };
    loop {
        if state.position.epochs_done >= settings.epochs {
            // nothing left to train (a run stopped between its last checkpoint and its results)
            return Ok(FitEnd::Finished(evaluate_now(&state.trainer)));
        }
        let (epoch, started) = (state.position.epochs_done, Instant::now());
        watch.progress.start_epoch(per_epoch);
        let plan = settings.epoch_plan(epoch, state.position.batches_done);
        let run = EpochRun {
            batches: loader::spawn_train_epoch(data.train.clone(), data.mean.clone(), plan),
            per_epoch,
            settings,
            watch,
        };
        let mut sums = std::mem::take(&mut state.position.sums);
        let earlier = sums.seconds;
        let stopped = train_epoch(state, run, &mut sums)?;
        sums.seconds = earlier + started.elapsed().as_secs_f64();
        if stopped {
            state.position.batches_done = sums.batches;
            state.position.sums = sums;
            on_checkpoint(state)?;
            let iteration = state.scheduler.iteration();
            return Ok(FitEnd::Interrupted { iteration });
        }
        watch.progress.note("evaluating on the test set…");
        let eval = evaluate_now(&state.trainer);
        let (train_loss, train_accuracy) = sums.means();
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss,
            train_accuracy,
            val_loss: eval.loss,
            val_accuracy: eval.accuracy,
            seconds: earlier + started.elapsed().as_secs_f64(),
        };
        state.history.epochs.push(record);
        let last_lr = state.history.lrs.last().copied().unwrap_or(0.0);
        watch.progress.end_epoch(&record, last_lr);
        state.position = Position {
            epochs_done: epoch + 1,
            ..Position::default()
        };
        on_checkpoint(state)?;
        if state.position.epochs_done == settings.epochs {
            return Ok(FitEnd::Finished(eval));
        }
        if watch.interrupt.requested() {
            return Ok(FitEnd::Interrupted {
                iteration: state.scheduler.iteration(),
            });
        }
    }
}
