//! Command-line arguments (clap). Parsing only: `commands/` does the work, with the library.

use std::path::PathBuf;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};
use clrtrain::backend::BackendKind;
use clrtrain::config::Overrides;
use clrtrain::data::cifar;
use clrtrain::lr_range::{RangeTest, Sweep};
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
    /// Learning-rate range test: train from fresh weights while the LR grows every batch, then
    /// suggest base_lr and max_lr (CSV and plot in the output folder; weights are discarded).
    FindLr(FindLrArgs),
    /// Evaluate a saved model on a test set: classification report (text, JSON),
    /// predictions.csv and the confusion matrix (CSV, PNG).
    Evaluate(EvaluateArgs),
    /// The most probable classes of a saved model for image files (any size; prepared as in
    /// training).
    Predict(PredictArgs),
    /// Measure throughput on synthetic images: the data pipeline alone, the training loop
    /// (forward, backward, SGD) and inference, with the code train runs; plus peak memory.
    Bench(BenchArgs),
    /// Preview the learning-rate schedule a training run would use, without data or a model:
    /// a summary (cycles, where the run ends), and optionally a CSV and a plot.
    Schedule(ScheduleArgs),
    /// Compare finished or interrupted runs: validation curves and learning rates in one
    /// picture, one table row per run (CSV, and printed best run first).
    Compare(CompareArgs),
}

/// `clrtrain compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run output folders (each with config.toml and history.csv; lr.csv and report.json are
    /// used when present).
    #[arg(value_name = "RUN_DIR", required = true)]
    pub runs: Vec<PathBuf>,

    /// Folder for comparison.png and comparison.csv.
    #[arg(long, value_name = "DIR", default_value = "comparison")]
    pub output: PathBuf,

    /// Print only the table and errors (no warnings, no closing line).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Flags `train` and `find-lr` both take: where the data and outputs are, how to run.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// TOML config file (see configs/); without it the reference settings are used.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Compute backend: auto (GPU if found, else flex), flex (CPU), ndarray (slow CPU, needs the
    /// `ndarray` feature), wgpu (GPU: Vulkan/Metal/DX12), wgpu-software (wgpu on a software
    /// adapter such as lavapipe: the GPU code path without a GPU, very slow), cuda (needs the
    /// `cuda` feature) [config: training.backend].
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<BackendKind>,

    /// Training batch size; the last partial batch of an epoch is dropped [config: training.batch_size].
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,

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

/// `clrtrain train`: every flag overrides the same key of the config file.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Go on from the latest checkpoint of this output folder (or from a checkpoint folder,
    /// OUTPUT/checkpoints/epoch-*) with its config: the same LR sequence from the next
    /// iteration, history and plots continued. Only --epochs, --backend and --data (the same
    /// dataset moved elsewhere) may change; --config is not read.
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    pub resume: Option<PathBuf>,

    #[command(flatten)]
    pub schedule: ScheduleFlags,
}

/// The schedule's flags, shared by `train` and `schedule`.
#[derive(Debug, Args)]
pub struct ScheduleFlags {
    /// LR policy: triangular, triangular2, exp_range or one_cycle [config: schedule.method].
    #[arg(long, value_name = "METHOD")]
    pub method: Option<Method>,

    /// Number of epochs [config: training.epochs].
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,

    /// Lower learning-rate bound [config: schedule.base_lr].
    #[arg(long, value_name = "LR")]
    pub base_lr: Option<f64>,

    /// Upper learning-rate bound [config: schedule.max_lr].
    #[arg(long, value_name = "LR")]
    pub max_lr: Option<f64>,

    /// Half-cycle length: steps from base to peak, in schedule.step_unit (epochs unless set
    /// to iterations) [config: schedule.step_size].
    #[arg(long, value_name = "STEPS")]
    pub step_size: Option<u64>,

    /// Steps from peak back to base, for asymmetric cycles [config: schedule.step_size_down].
    #[arg(long, value_name = "STEPS")]
    pub step_size_down: Option<u64>,

    /// Per-iteration amplitude decay of exp_range [config: schedule.gamma].
    #[arg(long, value_name = "GAMMA")]
    pub gamma: Option<f64>,

    /// Cycle the SGD momentum inversely to the LR between schedule.base_momentum and
    /// schedule.max_momentum (0.85 and 0.95 by default) [config: schedule.cycle_momentum = true].
    #[arg(long)]
    pub cycle_momentum: bool,
}

/// `clrtrain schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// TOML config file (see configs/); without it the reference settings are used.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub schedule: ScheduleFlags,

    /// Training batch size [config: training.batch_size].
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,

    /// Training-set size, which sets the iterations per epoch (default: CIFAR-10's 50,000).
    #[arg(long, value_name = "N", default_value_t = cifar::TRAIN_IMAGES)]
    pub train_size: usize,

    /// Preview this many iterations instead of the configured epochs.
    #[arg(long, value_name = "N", conflicts_with = "epochs")]
    pub iterations: Option<u64>,

    /// Write `iteration,lr,momentum` rows to this CSV file.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,

    /// Draw the learning rate per iteration into this PNG file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

/// `clrtrain evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Model file (model.clrtrain), or a folder holding one: a run's output folder or one of
    /// its checkpoints.
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,

    /// Dataset folder whose test split is used: CIFAR-10 binary (downloaded here when missing)
    /// or an image folder with test/<class>/ named as the model's classes.
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,

    /// Keep only the first N test images of each class.
    #[arg(long, value_name = "N")]
    pub test_per_class: Option<usize>,

    /// Compute backend: auto, flex, ndarray, wgpu, wgpu-software or cuda (as for train).
    #[arg(long, value_name = "BACKEND", default_value = "auto")]
    pub backend: BackendKind,

    /// Images per forward pass.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub batch_size: usize,

    /// Output folder for the report, predictions and confusion matrix (default: evaluation/
    /// next to the model file).
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Fail instead of downloading CIFAR-10 when no dataset is found.
    #[arg(long)]
    pub no_download: bool,

    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `clrtrain bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Compute backend: auto, flex, ndarray, wgpu, wgpu-software or cuda (as for train).
    #[arg(long, value_name = "BACKEND", default_value = "auto")]
    pub backend: BackendKind,

    /// Training batch size.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub batch_size: usize,

    /// Timed training steps (inference: a fifth as many batches, at least 2).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub steps: usize,

    /// Untimed training steps before the timed ones.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub warmup: usize,

    /// Inference batch size.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub eval_batch_size: usize,

    /// Print one JSON object instead of one line per figure (what the benchmark is doing then
    /// goes to stderr).
    #[arg(long)]
    pub json: bool,

    /// Print nothing but the figures and errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `clrtrain predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model file (model.clrtrain), or a folder holding one.
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,

    /// Image files (PNG, JPEG, BMP, GIF; any size: resized to the model's input).
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<PathBuf>,

    /// Classes listed per image, most probable first (at least 1).
    #[arg(long, value_name = "K", default_value_t = 3,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub top_k: usize,

    /// Print JSON: [{"image", "predictions": [{"class", "probability"}]}].
    #[arg(long)]
    pub json: bool,

    /// Compute backend: auto, flex, ndarray, wgpu, wgpu-software or cuda (as for train).
    #[arg(long, value_name = "BACKEND", default_value = "auto")]
    pub backend: BackendKind,
}

/// `clrtrain find-lr`.
#[derive(Debug, Args)]
pub struct FindLrArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Learning rate of the first iteration.
    #[arg(long, value_name = "LR", default_value_t = 1e-7)]
    pub start_lr: f64,

    /// Learning rate of the last iteration.
    #[arg(long, value_name = "LR", default_value_t = 10.0)]
    pub end_lr: f64,

    /// Iterations (batches) of the sweep; it stops earlier once the loss diverges.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub iterations: usize,

    /// How the LR grows: exp (same steps per decade) or linear (as in Smith's paper).
    #[arg(long, value_name = "MODE", default_value = "exp")]
    pub mode: Sweep,

    /// Smoothing factor of the loss's moving average (bias-corrected).
    #[arg(long, value_name = "BETA", default_value_t = 0.98)]
    pub beta: f64,

    /// Stop once the smoothed loss exceeds this multiple of the best one.
    #[arg(long, value_name = "X", default_value_t = 4.0)]
    pub stop_factor: f64,

    /// Write a copy of the config with the recommended base_lr and max_lr to this file.
    #[arg(long, value_name = "FILE")]
    pub write_config: Option<PathBuf>,
}

impl CommonArgs {
    /// The flags that replace config values.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            backend: self.backend,
            batch_size: self.batch_size,
            data: self.data.clone(),
            output: self.output.clone(),
            seed: self.seed,
            train_per_class: self.train_per_class,
            test_per_class: self.test_per_class,
            url: self.data_url.clone(),
            no_download: self.no_download,
            ..Overrides::default()
        }
    }
}

impl ScheduleFlags {
    /// These flags over `base`.
    pub fn overrides(&self, base: Overrides) -> Overrides {
        Overrides {
            method: self.method,
            epochs: self.epochs,
            base_lr: self.base_lr,
            max_lr: self.max_lr,
            step_size: self.step_size,
            step_size_down: self.step_size_down,
            gamma: self.gamma,
            cycle_momentum: self.cycle_momentum,
            ..base
        }
    }
}

impl TrainArgs {
    /// The flags that replace config values.
    pub fn overrides(&self) -> Overrides {
        self.schedule.overrides(self.common.overrides())
    }
}

impl ScheduleArgs {
    /// The flags that replace config values.
    pub fn overrides(&self) -> Overrides {
        let base = Overrides {
            batch_size: self.batch_size,
            ..Overrides::default()
        };
        self.schedule.overrides(base)
    }
}

impl FindLrArgs {
    /// The range test the flags describe.
    pub fn range_test(&self) -> RangeTest {
        RangeTest {
            start_lr: self.start_lr,
            end_lr: self.end_lr,
            iterations: self.iterations,
            sweep: self.mode,
            beta: self.beta,
            stop_factor: self.stop_factor,
        }
    }
}
