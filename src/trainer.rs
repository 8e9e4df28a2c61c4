//! Model, optimiser and loss on a training (autodiff) device, and one SGD step. The learning
//! rate and momentum come from the caller: the CLR schedule in [`crate::fit`], the range test
//! in `clrtrain find-lr`.

use std::path::Path;

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

use crate::data::loader::Batch;
use crate::error::{Error, Result};
use crate::inference::batch_tensors;
use crate::model::{MiniGoogLeNet, dropout_mask};
use crate::optim::{MomentumHandle, momentum_sgd};
use crate::outputs;
use crate::saved_model::{self, ModelInfo};

/// A model being trained, with its optimiser.
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
        saved_model::save(&dir.join(outputs::MODEL), &self.model, info)?;
        let path = dir.join(outputs::OPTIMIZER);
        self.optimizer
            .save(&path)
            .map_err(|e| Error::model(&path, e))
    }

    /// Load what [`Trainer::save`] wrote; returns the model's info.
    pub fn load(&mut self, dir: &Path) -> Result<ModelInfo> {
        let model_path = dir.join(outputs::MODEL);
        let (info, record) = saved_model::read(&model_path)?;
        self.model = self
            .model
            .clone()
            .try_load_record(record)
            .map_err(|e| Error::model(&model_path, e))?;
        let path = dir.join(outputs::OPTIMIZER);
        self.optimizer = self
            .optimizer
            .clone()
            .load(&path)
            .map_err(|e| Error::model(&path, e))?;
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
