//! A model in inference mode (running BatchNorm statistics, no dropout) on a set of images:
//! loss, accuracy and predictions for a labelled set, class probabilities for any images.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::data::ImageSet;
use crate::data::loader::{self, Batch};
use crate::model::MiniGoogLeNet;

/// Batch tensors on `device` (the batch's buffers move into them, uncopied).
pub fn batch_tensors(batch: Batch, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let len = batch.len();
    let images = Tensor::from_data(TensorData::new(batch.images, batch.shape), device);
    let labels = Tensor::from_data(TensorData::new(batch.labels, [len]), device);
    (images, labels)
}

/// The device a model's weights are on.
fn device_of(model: &MiniGoogLeNet) -> Device {
    model.devices().into_iter().next().unwrap_or_default()
}

/// Loss, accuracy and predictions on a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    pub predictions: Vec<usize>,
}

/// Evaluate `model` on the labelled `set` (with `mean` subtracted), `batch_size` images at a time.
pub fn evaluate(
    model: &MiniGoogLeNet,
    set: &ImageSet,
    mean: &[f32],
    batch_size: usize,
) -> Evaluation {
    let model = model.valid();
    let device = device_of(&model);
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

/// Class probabilities (softmax) of every image of `set`, one row per image.
pub fn probabilities(
    model: &MiniGoogLeNet,
    set: &ImageSet,
    mean: &[f32],
    batch_size: usize,
) -> Vec<Vec<f64>> {
    let device = device_of(model);
    let mut rows = Vec::with_capacity(set.len());
    for batch in loader::eval_batches(set, mean, batch_size) {
        let len = batch.len();
        let (x, _) = batch_tensors(batch, &device);
        let values: Vec<f64> = softmax(model.forward(x), 1)
            .into_data()
            .iter::<f64>()
            .collect();
        rows.extend(
            values
                .chunks(values.len() / len.max(1))
                .map(<[f64]>::to_vec),
        );
    }
    rows
}
