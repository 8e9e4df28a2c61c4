//! Command-line arguments (clap). Parsing only: the library does the work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clrtrain::backend::BackendKind;
use clrtrain::config::Overrides;
use clrtrain::schedule::Method;

/// Train image classifiers (MiniGoogLeNet on CIFAR-10) with cyclical learning rates.
#[derive(Debug, Parser)]
#[command(name = "clrtrain", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model and write the report, plots, history and weights to the output folder.
    Train(TrainArgs),
}

/// `clrtrain train`: every flag overrides the same key of the config file.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// TOML config file (see configs/); without it the reference settings are used.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// CLR policy: triangular, triangular2 or exp_range [config: schedule.method].
    #[arg(long, value_name = "METHOD")]
    pub method: Option<Method>,

    /// Compute backend: auto (GPU if found, else flex), flex (CPU), ndarray (slow CPU, needs the
    /// `ndarray` feature), wgpu (GPU: Vulkan/Metal/DX12), cuda (needs the `cuda` feature)
    /// [config: training.backend].
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<BackendKind>,

    /// Number of epochs [config: training.epochs].
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,

    /// Training batch size; the last partial batch of an epoch is dropped [config: training.batch_size].
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,

    /// Lower learning-rate bound [config: schedule.base_lr].
    #[arg(long, value_name = "LR")]
    pub base_lr: Option<f64>,

    /// Upper learning-rate bound [config: schedule.max_lr].
    #[arg(long, value_name = "LR")]
    pub max_lr: Option<f64>,

    /// Half-cycle length in epochs [config: schedule.step_size].
    #[arg(long, value_name = "EPOCHS")]
    pub step_size: Option<u64>,

    /// Per-iteration amplitude decay of exp_range [config: schedule.gamma].
    #[arg(long, value_name = "GAMMA")]
    pub gamma: Option<f64>,

    /// Dataset folder: CIFAR-10 binary (downloaded here when missing) or an image folder with
    /// train/<class>/ and test/<class>/ [config: data.path].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Output folder for report, plots, CSVs and weights [config: output.dir].
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Seed for initialisation, shuffling, augmentation and dropout [config: training.seed].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Keep only the first N training images of each class [config: data.train_per_class].
    #[arg(long, value_name = "N")]
    pub train_per_class: Option<usize>,

    /// Keep only the first N test images of each class [config: data.test_per_class].
    #[arg(long, value_name = "N")]
    pub test_per_class: Option<usize>,

    /// Address of the CIFAR-10 binary archive to download [config: data.url].
    #[arg(long, value_name = "URL")]
    pub data_url: Option<String>,

    /// Fail instead of downloading when no dataset is found [config: data.download = false].
    #[arg(long)]
    pub no_download: bool,

    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

impl TrainArgs {
    /// The flags that replace config values.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            method: self.method,
            backend: self.backend,
            epochs: self.epochs,
            batch_size: self.batch_size,
            base_lr: self.base_lr,
            max_lr: self.max_lr,
            step_size: self.step_size,
            gamma: self.gamma,
            data: self.data.clone(),
            output: self.output.clone(),
            seed: self.seed,
            train_per_class: self.train_per_class,
            test_per_class: self.test_per_class,
            url: self.data_url.clone(),
            no_download: self.no_download,
        }
    }
}
