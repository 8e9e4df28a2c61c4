//! The training loop: SGD with momentum whose learning rate the CLR schedule sets before every
//! batch, evaluation on the test set after every epoch.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use burn::lr_scheduler::LrScheduler;
use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::ImageSet;
use crate::data::augment::Augment;
use crate::data::loader::{self, Batch};
use crate::error::{Error, Result};
use crate::history::{EpochRecord, History};
use crate::interrupt::Interrupt;
use crate::model::{MiniGoogLeNet, dropout_mask};
use crate::optim::{MomentumHandle, momentum_sgd};
use crate::progress::TrainProgress;
use crate::saved_model::{self, ModelInfo};
use crate::schedule::{CyclicLrScheduler, Momentum};

/// Optimiser state inside a checkpoint folder.
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";

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
    /// Where the run starts: nothing done, or where a resumed run stopped.
    pub start: Position,
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

/// How [`fit`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum FitEnd {
    /// Every epoch trained: the evaluation after the last one.
    Finished(Evaluation),
    /// Stopped on request, after a checkpoint at this iteration.
    Interrupted { iteration: u64 },
}

/// Model, optimiser and loss on a training (autodiff) device. The learning rate comes from the
/// caller: the CLR schedule in [`fit`], the range test in [`crate::find_lr`].
pub struct Trainer {
    device: Device,
    /// Seeds the dropout masks, with the iteration.
    seed: u64,
    model: MiniGoogLeNet,
    optimizer: ModuleOptimizer,
    momentum: MomentumHandle,
    loss: CrossEntropyLoss,
}

/// What one training step leaves on the device, read back later in bulk.
pub struct StepOutput {
    /// The iteration (0-based, over the whole run) this step trained.
    pub iteration: u64,
    pub lr: f64,
    /// Mean loss of the batch, shape `[1]`.
    pub loss: Tensor<1>,
    /// Correct predictions in the batch, shape `[1]`.
    pub correct: Tensor<1, Int>,
}

/// Batch tensors on `device` (the batch's buffers move into them, uncopied).
pub fn batch_tensors(batch: Batch, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let len = batch.len();
    let images = Tensor::from_data(TensorData::new(batch.images, batch.shape), device);
    let labels = Tensor::from_data(TensorData::new(batch.labels, [len]), device);
    (images, labels)
}

fn correct_count(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1, Int> {
    logits
        .argmax(1)
        .squeeze_dim::<1>(1)
        .equal(labels)
        .int()
        .sum()
}

impl Trainer {
    /// A fresh model for `classes` classes; `device` gets autodiff enabled here.
    pub fn new(classes: usize, device: &Device, seed: u64) -> Self {
        let device = device.clone().autodiff();
        device.seed(seed);
        let (optimizer, momentum) = momentum_sgd(0.0);
        Self {
            model: MiniGoogLeNet::new(classes, &device),
            optimizer,
            momentum,
            loss: CrossEntropyLossConfig::new().init(&device),
            device,
            seed,
        }
    }

    /// Save the model (with `info`) and the optimiser state (momentum buffers) into `dir`.
    pub fn save(&self, dir: &Path, info: &ModelInfo) -> Result<()> {
        saved_model::save(&dir.join(saved_model::FILE), &self.model, info)?;
        let path = dir.join(OPTIMIZER_FILE);
        self.optimizer.save(&path).map_err(|e| Error::Model {
            path: path.clone(),
            message: e.to_string(),
        })
    }

    /// Load what [`Trainer::save`] wrote; returns the model's info.
    pub fn load(&mut self, dir: &Path) -> Result<ModelInfo> {
        let model_path = dir.join(saved_model::FILE);
        let (info, record) = saved_model::read(&model_path)?;
        let fail = |path: &Path, message: String| Error::Model {
            path: path.to_path_buf(),
            message,
        };
        self.model = self
            .model
            .clone()
            .try_load_record(record)
            .map_err(|e| fail(&model_path, e.to_string()))?;
        let path = dir.join(OPTIMIZER_FILE);
        self.optimizer = self
            .optimizer
            .clone()
            .load(&path)
            .map_err(|e| fail(&path, e.to_string()))?;
        Ok(info)
    }

    /// The model being trained.
    pub fn model(&self) -> &MiniGoogLeNet {
        &self.model
    }

    /// One SGD step on `batch` at learning rate `lr` and momentum `momentum`; `iteration` picks
    /// the dropout mask and labels the output.
    pub fn step(&mut self, batch: Batch, iteration: u64, lr: f64, momentum: f64) -> StepOutput {
        self.momentum.set(momentum);
        let shape = [batch.len(), self.model.feature_width()];
        let mask = dropout_mask(shape[0], shape[1], self.seed, iteration);
        let keep = Tensor::<2>::from_data(TensorData::new(mask, shape), &self.device);
        let (images, labels) = batch_tensors(batch, &self.device);
        let logits = self.model.forward_train(images, keep);
        let loss = self.loss.forward(logits.clone(), labels.clone());
        let correct = correct_count(logits.detach(), labels);
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optimizer.step(lr, self.model.clone(), grads);
        StepOutput {
            iteration,
            lr,
            loss: loss.detach(),
            correct,
        }
    }
}

/// Loss, accuracy and predictions on a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    pub predictions: Vec<usize>,
}

/// Evaluate `model` in inference mode (running BatchNorm statistics, no dropout).
pub fn evaluate(
    model: &MiniGoogLeNet,
    set: &ImageSet,
    mean: &[f32],
    batch_size: usize,
) -> Evaluation {
    let model = model.valid();
    let device = model.devices().into_iter().next().unwrap_or_default();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    // results stay on the device until the end: one read back, no stall per batch
    let (mut losses, mut predicted) = (Vec::new(), Vec::new());
    for batch in loader::eval_batches(set, mean, batch_size) {
        let len = batch.len() as f64;
        let (images, labels) = batch_tensors(batch, &device);
        let logits = model.forward(images);
        losses.push(loss_fn.forward(logits.clone(), labels).mul_scalar(len));
        predicted.push(logits.argmax(1).squeeze_dim::<1>(1));
    }
    if losses.is_empty() {
        return Evaluation {
            loss: 0.0,
            accuracy: 0.0,
            predictions: Vec::new(),
        };
    }
    let loss_sum = Tensor::cat(losses, 0).sum().into_scalar::<f64>();
    let predictions: Vec<usize> = Tensor::cat(predicted, 0)
        .into_data()
        .iter::<i64>()
        .map(|p| p as usize)
        .collect();
    let correct = predictions
        .iter()
        .zip(&set.labels)
        .filter(|(p, t)| **p == **t as usize)
        .count();
    let n = set.len().max(1) as f64;
    Evaluation {
        loss: loss_sum / n,
        accuracy: correct as f64 / n,
        predictions,
    }
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
}

/// What [`train_epoch`] trains with, besides the trainer and the scheduler.
pub struct EpochRun<'a> {
    pub batches: crossbeam_channel::Receiver<Batch>,
    /// Batches in a whole epoch.
    pub per_epoch: usize,
    pub settings: &'a FitSettings,
    pub progress: &'a TrainProgress,
    pub interrupt: &'a Interrupt,
}

/// Train on every batch the loader sends, adding to `totals`; LRs go into `history` as they are
/// used. Returns whether it stopped early on request (its sums then cover the batches trained).
/// This is the loop [`fit`] runs every epoch (and `clrtrain bench` times).
pub fn train_epoch(
    trainer: &mut Trainer,
    scheduler: &mut CyclicLrScheduler,
    run: EpochRun,
    totals: &mut EpochSums,
    history: &mut History,
) -> Result<bool> {
    let (settings, progress) = (run.settings, run.progress);
    let mut pending = Vec::with_capacity(READ_EVERY);
    for batch in run.batches {
        let iteration = scheduler.iteration();
        let momentum = settings.momentum.at(scheduler.schedule(), iteration);
        let output = trainer.step(batch, iteration, scheduler.step(), momentum);
        let lr = output.lr;
        history.lrs.push(lr);
        history.momenta.push(momentum);
        pending.push(output);
        if pending.len() == READ_EVERY {
            totals.drain(&mut pending, settings.batch_size)?;
            let (loss, accuracy) = (
                totals.loss / totals.batches as f64,
                totals.correct / totals.images as f64,
            );
            progress.batch(totals.batches, loss, accuracy, lr);
        }
        let trained = totals.batches + pending.len();
        if run.interrupt.requested() && trained < run.per_epoch {
            totals.drain(&mut pending, settings.batch_size)?;
            return Ok(true);
        }
    }
    totals.drain(&mut pending, settings.batch_size)?;
    Ok(false)
}

/// Train from `settings.start` to `settings.epochs` epochs, evaluating on `test` after each.
/// `history` grows as the run goes (also when it fails). `on_checkpoint` sees the state after
/// every epoch, and mid-epoch when `interrupt` stops the run, so it can be saved.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    trainer: &mut Trainer,
    scheduler: &mut CyclicLrScheduler,
    data: &FitData,
    settings: &FitSettings,
    history: &mut History,
    progress: &TrainProgress,
    interrupt: &Interrupt,
    mut on_checkpoint: impl FnMut(&History, &Trainer, &CyclicLrScheduler, &Position) -> Result<()>,
) -> Result<FitEnd> {
    let per_epoch = loader::batches_per_epoch(data.train.len(), settings.batch_size);
    let mut position = settings.start.clone();
    let past_the_end = position.epochs_done > settings.epochs
        || (position.epochs_done == settings.epochs && position.batches_done > 0);
    if past_the_end {
        return Err(Error::Config(format!(
            "the run is already past training.epochs = {} ({} epochs done)",
            settings.epochs, position.epochs_done
        )));
    }
    let evaluate_now = |trainer: &Trainer| {
        let model = trainer.model();
        evaluate(model, data.test, &data.mean, settings.eval_batch_size)
    };
    if position.epochs_done == settings.epochs {
        // stopped between its last checkpoint and its results: only the results are missing
        return Ok(FitEnd::Finished(evaluate_now(trainer)));
    }
    loop {
        let (epoch, started) = (position.epochs_done, Instant::now());
        progress.start_epoch(per_epoch);
        let run = EpochRun {
            batches: loader::spawn_train_epoch(
                data.train.clone(),
                data.mean.clone(),
                settings.augment,
                settings.batch_size,
                settings.seed,
                epoch,
                position.batches_done,
            ),
            per_epoch,
            settings,
            progress,
            interrupt,
        };
        let mut sums = std::mem::take(&mut position.sums);
        let earlier = sums.seconds;
        let stopped = train_epoch(trainer, scheduler, run, &mut sums, history)?;
        if stopped {
            sums.seconds = earlier + started.elapsed().as_secs_f64();
            position.batches_done = sums.batches;
            position.sums = sums;
            on_checkpoint(history, trainer, scheduler, &position)?;
            let iteration = scheduler.iteration();
            return Ok(FitEnd::Interrupted { iteration });
        }
        progress.note("evaluating on the test set…");
        let eval = evaluate_now(trainer);
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: sums.loss / sums.batches.max(1) as f64,
            train_accuracy: sums.correct / sums.images.max(1) as f64,
            val_loss: eval.loss,
            val_accuracy: eval.accuracy,
            seconds: earlier + started.elapsed().as_secs_f64(),
        };
        history.epochs.push(record);
        progress.end_epoch(&record, *history.lrs.last().unwrap_or(&0.0));
        position = Position {
            epochs_done: epoch + 1,
            ..Position::default()
        };
        on_checkpoint(history, trainer, scheduler, &position)?;
        if position.epochs_done == settings.epochs {
            return Ok(FitEnd::Finished(eval));
        }
        if interrupt.requested() {
            return Ok(FitEnd::Interrupted {
                iteration: scheduler.iteration(),
            });
        }
    }
}
