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

use crate::data::ImageSet;
use crate::data::augment::Augment;
use crate::data::loader::{self, Batch};
use crate::error::{Error, Result};
use crate::history::{EpochRecord, History};
use crate::model::MiniGoogLeNet;
use crate::optim::{MomentumHandle, momentum_sgd};
use crate::progress::TrainProgress;
use crate::schedule::{CyclicLrScheduler, Momentum};

/// Weights inside a checkpoint folder.
pub const MODEL_FILE: &str = "model.bpk";
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
    /// Epochs already trained (by a run this one resumes).
    pub first_epoch: usize,
}

/// Model, optimiser and loss on a training (autodiff) device. The learning rate comes from the
/// caller: the CLR schedule in [`fit`], the range test in [`crate::find_lr`].
pub struct Trainer {
    device: Device,
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
        }
    }

    /// Seed the device's random numbers (dropout) for epoch `epoch`: each epoch's stream depends
    /// on (seed, epoch) only, so a resumed run draws what an uninterrupted one would.
    pub fn seed_epoch(&self, seed: u64, epoch: usize) {
        self.device
            .seed(seed ^ (epoch as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    }

    /// Save weights and optimiser state (momentum buffers) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let model_path = dir.join(MODEL_FILE);
        let optimizer_path = dir.join(OPTIMIZER_FILE);
        let fail = |path: &Path, e: burn::store::RecordError| Error::Model {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        self.model
            .clone()
            .save_file(&model_path)
            .map_err(|e| fail(&model_path, e))?;
        self.optimizer
            .save(&optimizer_path)
            .map_err(|e| fail(&optimizer_path, e))
    }

    /// Load weights and optimiser state saved by [`Trainer::save`].
    pub fn load(&mut self, dir: &Path) -> Result<()> {
        let model_path = dir.join(MODEL_FILE);
        let optimizer_path = dir.join(OPTIMIZER_FILE);
        let fail = |path: &Path, e: burn::store::RecordError| Error::Model {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        self.model = self
            .model
            .clone()
            .try_load_file(&model_path)
            .map_err(|e| fail(&model_path, e))?;
        self.optimizer = self
            .optimizer
            .clone()
            .load(&optimizer_path)
            .map_err(|e| fail(&optimizer_path, e))?;
        Ok(())
    }

    /// The model being trained.
    pub fn model(&self) -> &MiniGoogLeNet {
        &self.model
    }

    /// One SGD step on `batch` at learning rate `lr` and momentum `momentum`; `iteration` only
    /// labels the output.
    pub fn step(&mut self, batch: Batch, iteration: u64, lr: f64, momentum: f64) -> StepOutput {
        self.momentum.set(momentum);
        let (images, labels) = batch_tensors(batch, &self.device);
        let logits = self.model.forward(images);
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
    let (mut loss_sum, mut predictions) = (0.0, Vec::with_capacity(set.len()));
    for batch in loader::eval_batches(set, mean, batch_size) {
        let len = batch.len() as f64;
        let (images, labels) = batch_tensors(batch, &device);
        let logits = model.forward(images);
        let loss: f64 = loss_fn.forward(logits.clone(), labels).into_scalar::<f64>();
        loss_sum += loss * len;
        let predicted = logits.argmax(1).into_data();
        predictions.extend(predicted.iter::<i64>().map(|p| p as usize));
    }
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
#[derive(Default)]
struct EpochTotals {
    loss: f64,
    correct: f64,
    batches: usize,
    images: usize,
}

impl EpochTotals {
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

/// Train on every batch the loader sends; LRs go into `history` as they are used.
fn train_epoch(
    trainer: &mut Trainer,
    scheduler: &mut CyclicLrScheduler,
    batches: crossbeam_channel::Receiver<Batch>,
    settings: &FitSettings,
    history: &mut History,
    progress: &TrainProgress,
) -> Result<EpochTotals> {
    let (mut totals, mut pending) = (EpochTotals::default(), Vec::with_capacity(READ_EVERY));
    for batch in batches {
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
    }
    totals.drain(&mut pending, settings.batch_size)?;
    Ok(totals)
}

/// Train for `settings.epochs` epochs, evaluating on `test` after each. `history` grows as the
/// run goes (also when it fails), and `on_epoch` sees it after every epoch so files can be
/// written as the run goes. Returns the evaluation after the last epoch.
pub fn fit(
    trainer: &mut Trainer,
    scheduler: &mut CyclicLrScheduler,
    data: &FitData,
    settings: &FitSettings,
    history: &mut History,
    progress: &TrainProgress,
    mut on_epoch: impl FnMut(&History, &Trainer, &CyclicLrScheduler) -> Result<()>,
) -> Result<Evaluation> {
    let batches = loader::batches_per_epoch(data.train.len(), settings.batch_size);
    let mut last = None;
    for epoch in settings.first_epoch..settings.epochs {
        let started = Instant::now();
        trainer.seed_epoch(settings.seed, epoch);
        progress.start_epoch(batches);
        let receiver = loader::spawn_train_epoch(
            data.train.clone(),
            data.mean.clone(),
            settings.augment,
            settings.batch_size,
            settings.seed,
            epoch,
        );
        let totals = train_epoch(trainer, scheduler, receiver, settings, history, progress)?;
        progress.note("evaluating on the test set…");
        let eval = evaluate(
            trainer.model(),
            data.test,
            &data.mean,
            settings.eval_batch_size,
        );
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: totals.loss / totals.batches.max(1) as f64,
            train_accuracy: totals.correct / totals.images.max(1) as f64,
            val_loss: eval.loss,
            val_accuracy: eval.accuracy,
            seconds: started.elapsed().as_secs_f64(),
        };
        history.epochs.push(record);
        progress.end_epoch(&record, *history.lrs.last().unwrap_or(&0.0));
        on_epoch(history, trainer, scheduler)?;
        last = Some(eval);
    }
    last.ok_or_else(|| {
        Error::Config(format!(
            "nothing to train: {} of training.epochs = {} are done",
            settings.first_epoch, settings.epochs
        ))
    })
}
