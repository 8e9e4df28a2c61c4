//! clrtrain: train image classifiers with cyclical learning rates on Burn.
//!
//! The pieces, in the order data flows through them:
//! - [`config`] — the TOML run configuration and command-line overrides;
//! - [`data`] — CIFAR-10 binary batches or image folders, the mean image, augmentation, batches;
//! - [`backend`] — the one place a compute device is chosen;
//! - [`model`] — MiniGoogLeNet;
//! - [`schedule`] — the CLR policies, pure functions of the iteration;
//! - [`optim`] — SGD whose momentum can change every iteration;
//! - [`train`] — the SGD loop with per-batch learning rates;
//! - [`report`], [`plot`], [`history`], [`outputs`] — what a run writes;
//! - [`checkpoint`], [`interrupt`] — what a run saves to be resumed exactly, and stopping cleanly;
//! - [`saved_model`] — the model file, with what is needed to use it;
//! - [`evaluate`], [`predict`] — `clrtrain evaluate` and `clrtrain predict` on a saved model;
//! - [`run`] — `clrtrain train` end to end;
//! - [`lr_range`], [`find_lr`] — the learning-rate range test and `clrtrain find-lr`;
//! - [`preview`] — `clrtrain schedule`, the schedule without training;
//! - [`bench`] — `clrtrain bench`, throughput of the pipeline, training and inference.

pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod evaluate;
pub mod find_lr;
pub mod history;
pub mod interrupt;
pub mod lr_range;
pub mod model;
pub mod optim;
pub mod outputs;
pub mod plot;
pub mod predict;
pub mod preview;
pub mod progress;
pub mod report;
pub mod run;
pub mod saved_model;
pub mod schedule;
pub mod train;

pub use error::{Error, Result};
