//! clrtrain: train image classifiers with cyclical learning rates on Burn.
//!
//! The core, in the order data flows through it (the `clrtrain` binary's `commands/` drive it):
//! - [`config`] — the TOML run configuration and command-line overrides;
//! - [`data`] — CIFAR-10 binary batches or image folders, the mean image, augmentation, batches;
//! - [`backend`] — the one place a compute device is chosen;
//! - [`session`] — the start-up every training command shares;
//! - [`model`] — MiniGoogLeNet;
//! - [`schedule`] — the CLR policies and one-cycle, pure functions of the iteration;
//! - [`optim`] — SGD whose momentum can change every iteration;
//! - [`trainer`] — model, optimiser and one SGD step;
//! - [`fit`] — the training loop with per-batch learning rates;
//! - [`inference`] — a model on a set of images: loss, accuracy, predictions, probabilities;
//! - [`checkpoint`], [`resume`], [`interrupt`] — what a run saves, the rules for going on from
//!   it, and stopping cleanly;
//! - [`saved_model`] — the model file, with what is needed to use it;
//! - [`lr_range`] — the learning-rate range test as plain numbers;
//! - [`report`], [`plot`], [`history`], [`outputs`] — what a run writes;
//! - [`comparison`] — run folders read back and compared;
//! - [`console`], [`error`], [`names`] — messages and progress, failures, named choices.

pub mod backend;
pub mod checkpoint;
pub mod comparison;
pub mod config;
pub mod console;
pub mod data;
pub mod error;
pub mod fit;
pub mod history;
pub mod inference;
pub mod interrupt;
pub mod lr_range;
pub mod model;
pub mod names;
pub mod optim;
pub mod outputs;
pub mod plot;
pub mod report;
pub mod resume;
pub mod saved_model;
pub mod schedule;
pub mod session;
pub mod trainer;

pub use error::{Error, Result};
