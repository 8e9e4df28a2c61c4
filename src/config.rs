//! The run configuration: a TOML file parsed into typed structs (unknown keys rejected by name),
//! overridden by command-line flags, then validated as a whole.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::data::DataFormat;
use crate::error::{Error, Result};
use crate::schedule::{Clr, Method};

/// Official CIFAR-10 binary archive.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// MD5 of [`CIFAR10_URL`], as published on the CIFAR-10 page.
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data: DataConfig,
    pub augment: AugmentConfig,
    pub schedule: ScheduleConfig,
    pub training: TrainingConfig,
    pub output: OutputConfig,
}

/// Where the images come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// CIFAR-10 root (holding `cifar-10-batches-bin/`) or image folder (`train/`, `test/`).
    pub path: PathBuf,
    /// `auto`, `cifar-binary` or `image-folder`.
    pub format: DataFormat,
    /// Download CIFAR-10 into `path` when no dataset is found there.
    pub download: bool,
    /// Archive address for the download.
    pub url: String,
    /// Expected MD5 of the archive.
    pub md5: String,
    /// Keep only the first N training images of each class.
    pub train_per_class: Option<usize>,
    /// Keep only the first N test images of each class.
    pub test_per_class: Option<usize>,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data"),
            format: DataFormat::Auto,
            download: true,
            url: CIFAR10_URL.to_string(),
            md5: CIFAR10_MD5.to_string(),
            train_per_class: None,
            test_per_class: None,
        }
    }
}

/// Training-batch augmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Largest shift as a fraction of width and height (0 disables shifting).
    pub shift: f64,
    /// Random horizontal flip with probability 1/2.
    pub flip: bool,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            shift: 0.1,
            flip: true,
        }
    }
}

/// The cyclical learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    pub method: Method,
    pub base_lr: f64,
    pub max_lr: f64,
    /// Half-cycle length in epochs.
    pub step_size: u64,
    /// Per-iteration amplitude decay for `exp_range`.
    pub gamma: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            method: Method::Triangular,
            base_lr: 1e-7,
            max_lr: 1e-2,
            step_size: 8,
            gamma: 0.99994,
        }
    }
}

/// Optimiser and loop settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// SGD momentum (no dampening, no Nesterov).
    pub momentum: f64,
    /// Seed for weight initialisation, shuffling, augmentation and dropout.
    pub seed: u64,
    /// `auto`, `flex`, `ndarray`, `wgpu` or `cuda`.
    pub backend: BackendKind,
    /// Batch size for evaluation (no gradients, so it can be larger).
    pub eval_batch_size: usize,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            epochs: 96,
            batch_size: 64,
            momentum: 0.9,
            seed: 42,
            backend: BackendKind::Auto,
            eval_batch_size: 256,
        }
    }
}

/// Where results go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    pub dir: PathBuf,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("output"),
        }
    }
}

/// Command-line values that replace the file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub method: Option<Method>,
    pub backend: Option<BackendKind>,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub base_lr: Option<f64>,
    pub max_lr: Option<f64>,
    pub step_size: Option<u64>,
    pub gamma: Option<f64>,
    pub data: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub seed: Option<u64>,
    pub train_per_class: Option<usize>,
    pub test_per_class: Option<usize>,
    pub url: Option<String>,
    pub no_download: bool,
}

impl Config {
    /// Parse a TOML file (not yet validated).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::Config(msg) => Error::Config(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    /// Parse TOML text (not yet validated).
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text)
            .map_err(|e| Error::Config(e.message().to_string() + &span_hint(text, &e)))
    }

    /// The config as TOML, as saved next to a run's outputs.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Replace the values the command line gives.
    pub fn apply(&mut self, o: &Overrides) {
        fn set<T: Clone>(slot: &mut T, value: &Option<T>) {
            if let Some(v) = value {
                *slot = v.clone();
            }
        }
        set(&mut self.schedule.method, &o.method);
        set(&mut self.training.backend, &o.backend);
        set(&mut self.training.epochs, &o.epochs);
        set(&mut self.training.batch_size, &o.batch_size);
        set(&mut self.schedule.base_lr, &o.base_lr);
        set(&mut self.schedule.max_lr, &o.max_lr);
        set(&mut self.schedule.step_size, &o.step_size);
        set(&mut self.schedule.gamma, &o.gamma);
        set(&mut self.data.path, &o.data);
        set(&mut self.output.dir, &o.output);
        set(&mut self.training.seed, &o.seed);
        set(&mut self.data.url, &o.url);
        if o.train_per_class.is_some() {
            self.data.train_per_class = o.train_per_class;
        }
        if o.test_per_class.is_some() {
            self.data.test_per_class = o.test_per_class;
        }
        if o.no_download {
            self.data.download = false;
        }
    }

    /// Reject impossible values, naming the key.
    pub fn validate(&self) -> Result<()> {
        let s = &self.schedule;
        let t = &self.training;
        let checks: [(bool, String); 11] = [
            (
                s.base_lr.is_finite() && s.base_lr > 0.0,
                format!("schedule.base_lr = {} must be a positive number", s.base_lr),
            ),
            (
                s.max_lr.is_finite(),
                format!("schedule.max_lr = {} must be a finite number", s.max_lr),
            ),
            (
                s.base_lr < s.max_lr,
                format!(
                    "schedule.base_lr = {} must be smaller than schedule.max_lr = {}",
                    s.base_lr, s.max_lr
                ),
            ),
            (
                s.step_size > 0,
                "schedule.step_size = 0: the half cycle must last at least one epoch".into(),
            ),
            (
                s.gamma > 0.0 && s.gamma <= 1.0,
                format!("schedule.gamma = {} must be in (0, 1]", s.gamma),
            ),
            (t.epochs > 0, "training.epochs = 0: nothing to train".into()),
            (
                t.batch_size > 0,
                "training.batch_size = 0 must be at least 1".into(),
            ),
            (
                t.eval_batch_size > 0,
                "training.eval_batch_size = 0 must be at least 1".into(),
            ),
            (
                (0.0..1.0).contains(&t.momentum),
                format!("training.momentum = {} must be in [0, 1)", t.momentum),
            ),
            (
                (0.0..0.5).contains(&self.augment.shift),
                format!("augment.shift = {} must be in [0, 0.5)", self.augment.shift),
            ),
            (
                self.data.train_per_class != Some(0) && self.data.test_per_class != Some(0),
                "data.train_per_class and data.test_per_class must be at least 1".into(),
            ),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(Error::Config(message)),
            None => Ok(()),
        }
    }

    /// The schedule in iterations, for a training set of `train_size` images.
    pub fn clr(&self, train_size: usize) -> Clr {
        let s = &self.schedule;
        Clr {
            base_lr: s.base_lr,
            max_lr: s.max_lr,
            step_size: crate::schedule::step_size_iterations(
                s.step_size,
                train_size,
                self.training.batch_size,
            ),
            method: s.method,
            gamma: s.gamma,
        }
    }
}

/// " (line N)" for a TOML error that knows where it happened.
fn span_hint(text: &str, e: &toml::de::Error) -> String {
    e.span()
        .map(|span| format!(" (line {})", text[..span.start].matches('\n').count() + 1))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_reference_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.training.batch_size, 64);
        assert_eq!(c.schedule.step_size, 8);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[training]\nepochz = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("epochz"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_method_is_named() {
        let err = Config::from_toml("[schedule]\nmethod = \"cosine\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cosine"), "{err}");
    }

    #[test]
    fn impossible_values_are_rejected_with_their_key() {
        let cases = [
            (
                "[schedule]\nbase_lr = 0.1\nmax_lr = 0.01\n",
                "schedule.base_lr",
            ),
            ("[schedule]\nstep_size = 0\n", "schedule.step_size"),
            ("[training]\nbatch_size = 0\n", "training.batch_size"),
            ("[training]\nmomentum = 1.5\n", "training.momentum"),
            ("[schedule]\ngamma = 0.0\n", "schedule.gamma"),
        ];
        for (text, key) in cases {
            let err = Config::from_toml(text)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn overrides_replace_file_values() {
        let mut c = Config::from_toml("[schedule]\nmethod = \"triangular\"\n").unwrap();
        c.apply(&Overrides {
            method: Some(Method::Triangular2),
            epochs: Some(3),
            train_per_class: Some(10),
            ..Default::default()
        });
        assert_eq!(c.schedule.method, Method::Triangular2);
        assert_eq!(c.training.epochs, 3);
        assert_eq!(c.data.train_per_class, Some(10));
    }

    #[test]
    fn saved_config_parses_back() {
        let mut c = Config::default();
        c.data.train_per_class = Some(5);
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    }
}
