//! The run configuration: a TOML file parsed into typed structs (unknown keys rejected by name),
//! overridden by command-line flags, then validated as a whole.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::data::DataConfig;
use crate::data::loader::batches_per_epoch;
use crate::error::{Error, Result};
use crate::schedule::{
    Anneal, Clr, Method, Momentum, OneCycle, Scale, ScaleFn, ScaleMode, Schedule,
};

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

crate::named_enum! {
    /// In what unit step sizes are given.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum StepUnit("step unit") {
        /// Epochs: `step · (train_size / batch_size)` iterations.
        Epochs = "epochs",
        /// Iterations (batches).
        Iterations = "iterations",
    }
}

/// The learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    pub method: Method,
    pub base_lr: f64,
    pub max_lr: f64,
    /// Cyclical: iterations or epochs from base to peak (the half cycle). Also read as
    /// `step_size_up`, PyTorch's name.
    #[serde(alias = "step_size_up")]
    pub step_size: u64,
    /// Cyclical: from peak back to base; absent = `step_size` (symmetric).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_size_down: Option<u64>,
    /// Unit of `step_size` and `step_size_down`.
    pub step_unit: StepUnit,
    /// Per-iteration amplitude decay for `exp_range` (and the `exp` scale).
    pub gamma: f64,
    /// Cyclical: a named amplitude scale replacing the method's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_fn: Option<ScaleFn>,
    /// What `scale_fn` is a function of; absent = the method's own mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_mode: Option<ScaleMode>,
    /// one_cycle: the first LR is `max_lr / div_factor`.
    pub div_factor: f64,
    /// one_cycle: the last LR is `max_lr / div_factor / final_div_factor`.
    pub final_div_factor: f64,
    /// one_cycle: fraction of the run spent warming up.
    pub pct_start: f64,
    /// one_cycle: `cos` or `linear` annealing.
    pub anneal: Anneal,
    /// one_cycle: up, back down to the start, then down to the minimum.
    pub three_phase: bool,
    /// Cycle the SGD momentum inversely to the LR, between base_momentum and max_momentum
    /// (instead of the constant training.momentum).
    pub cycle_momentum: bool,
    pub base_momentum: f64,
    pub max_momentum: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            method: Method::Triangular,
            base_lr: 1e-7,
            max_lr: 1e-2,
            step_size: 8,
            step_size_down: None,
            step_unit: StepUnit::Epochs,
            gamma: 0.99994,
            scale_fn: None,
            scale_mode: None,
            div_factor: 25.0,
            final_div_factor: 1e4,
            pct_start: 0.3,
            anneal: Anneal::Cos,
            three_phase: false,
            cycle_momentum: false,
            base_momentum: 0.85,
            max_momentum: 0.95,
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
    /// Checkpoints kept in `dir/checkpoints/`: the most recent ones, plus the best by
    /// validation accuracy.
    pub keep_checkpoints: usize,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("output"),
            keep_checkpoints: 3,
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
    pub step_size_down: Option<u64>,
    pub gamma: Option<f64>,
    pub data: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub seed: Option<u64>,
    pub train_per_class: Option<usize>,
    pub test_per_class: Option<usize>,
    pub url: Option<String>,
    pub no_download: bool,
    pub cycle_momentum: bool,
}

impl Config {
    /// The config file (or the reference defaults without one) with the command line's
    /// overrides; not yet validated.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply(overrides);
        Ok(config)
    }

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
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::encode("the configuration as TOML", e))
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
        if o.step_size_down.is_some() {
            self.schedule.step_size_down = o.step_size_down;
        }
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
        if o.cycle_momentum {
            self.schedule.cycle_momentum = true;
        }
    }

    /// Reject impossible values, naming the key.
    pub fn validate(&self) -> Result<()> {
        let s = &self.schedule;
        let t = &self.training;
        let momenta_ok = !s.cycle_momentum
            || (0.0 <= s.base_momentum
                && s.base_momentum <= s.max_momentum
                && s.max_momentum < 1.0);
        let checks: [(bool, String); 17] = [
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
                "schedule.step_size = 0: the half cycle must last at least one step".into(),
            ),
            (
                momenta_ok,
                format!(
                    "schedule.base_momentum = {} and schedule.max_momentum = {} must satisfy 0 <= base <= max < 1",
                    s.base_momentum, s.max_momentum
                ),
            ),
            (
                s.step_size_down != Some(0),
                "schedule.step_size_down = 0: the way down must last at least one step".into(),
            ),
            (
                s.div_factor.is_finite() && s.div_factor >= 1.0,
                format!("schedule.div_factor = {} must be at least 1", s.div_factor),
            ),
            (
                s.final_div_factor.is_finite() && s.final_div_factor >= 1.0,
                format!(
                    "schedule.final_div_factor = {} must be at least 1",
                    s.final_div_factor
                ),
            ),
            (
                s.pct_start > 0.0 && s.pct_start < if s.three_phase { 0.5 } else { 1.0 },
                format!(
                    "schedule.pct_start = {} must be in (0, 1), and below 0.5 with three_phase",
                    s.pct_start
                ),
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
            (
                self.output.keep_checkpoints > 0,
                "output.keep_checkpoints = 0: the latest checkpoint must be kept".into(),
            ),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(Error::Config(message)),
            None => Ok(()),
        }
    }

    /// The SGD momentum plan.
    pub fn momentum(&self) -> Momentum {
        let s = &self.schedule;
        if s.cycle_momentum {
            Momentum::Cyclical {
                base: s.base_momentum,
                max: s.max_momentum,
            }
        } else {
            Momentum::Constant(self.training.momentum)
        }
    }

    /// The schedule in iterations, for a training set of `train_size` images.
    pub fn schedule(&self, train_size: usize) -> Schedule {
        let s = &self.schedule;
        // as the reference: step_size_epochs · (train_size / batch_size), integer division
        let per_epoch = batches_per_epoch(train_size, self.training.batch_size.max(1)) as u64;
        let iterations = |steps: u64| match s.step_unit {
            StepUnit::Epochs => steps * per_epoch,
            StepUnit::Iterations => steps,
        };
        if s.method == Method::OneCycle {
            return Schedule::OneCycle(OneCycle {
                max_lr: s.max_lr,
                total: self.training.epochs as u64 * per_epoch,
                div_factor: s.div_factor,
                final_div_factor: s.final_div_factor,
                pct_start: s.pct_start,
                anneal: s.anneal,
                three_phase: s.three_phase,
            });
        }
        let method_scale = Scale::of(s.method, s.gamma);
        let scale = Scale {
            function: s.scale_fn.unwrap_or(method_scale.function),
            mode: s.scale_mode.unwrap_or(method_scale.mode),
            gamma: s.gamma,
        };
        let step_up = iterations(s.step_size).max(1);
        Schedule::Cyclic(Clr {
            base_lr: s.base_lr,
            max_lr: s.max_lr,
            step_up,
            step_down: s.step_size_down.map_or(step_up, |d| iterations(d).max(1)),
            method: s.method,
            scale,
        })
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
    fn reference_step_size_uses_integer_division() {
        // 50,000 images, batch 64: 781 iterations per epoch, 8 epochs -> 6248
        let Schedule::Cyclic(clr) = Config::default().schedule(50_000) else {
            panic!("cyclic expected")
        };
        assert_eq!(clr.step_up, 6248);
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
    fn schedule_keys_build_the_schedule() {
        let text = "[schedule]\nmethod = \"triangular2\"\nstep_unit = \"iterations\"\nstep_size = 10\n\
                    step_size_down = 30\nscale_fn = \"inverse\"\nscale_mode = \"iterations\"\n";
        let c = Config::from_toml(text).unwrap();
        c.validate().unwrap();
        let Schedule::Cyclic(clr) = c.schedule(50_000) else {
            panic!("cyclic expected")
        };
        assert_eq!((clr.step_up, clr.step_down), (10, 30));
        assert_eq!(
            (clr.scale.function, clr.scale.mode),
            (ScaleFn::Inverse, ScaleMode::Iterations)
        );
        // epochs: 50,000 / 64 = 781 iterations per epoch
        let c = Config::from_toml("[schedule]\nstep_size_up = 2\nstep_size_down = 6\n").unwrap();
        let Schedule::Cyclic(clr) = c.schedule(50_000) else {
            panic!("cyclic expected")
        };
        assert_eq!((clr.step_up, clr.step_down), (1562, 4686));
        assert_eq!(clr.scale.function, ScaleFn::Constant);
    }

    #[test]
    fn one_cycle_spans_the_whole_run() {
        let c = Config::from_toml(
            "[schedule]\nmethod = \"one_cycle\"\nmax_lr = 0.1\nanneal = \"linear\"\n[training]\nepochs = 3\n",
        )
        .unwrap();
        c.validate().unwrap();
        let Schedule::OneCycle(o) = c.schedule(640) else {
            panic!("one-cycle expected")
        };
        assert_eq!((o.total, o.max_lr, o.anneal), (30, 0.1, Anneal::Linear));
        for (text, key) in [
            ("[schedule]\npct_start = 1.0\n", "schedule.pct_start"),
            (
                "[schedule]\npct_start = 0.6\nthree_phase = true\n",
                "schedule.pct_start",
            ),
            ("[schedule]\ndiv_factor = 0.5\n", "schedule.div_factor"),
            (
                "[schedule]\nstep_size_down = 0\n",
                "schedule.step_size_down",
            ),
        ] {
            let err = Config::from_toml(text)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = Config::from_toml("[schedule]\nscale_fn = \"sawtooth\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sawtooth"), "{err}");
    }

    #[test]
    fn saved_config_parses_back() {
        let mut c = Config::default();
        c.data.train_per_class = Some(5);
        assert_eq!(Config::from_toml(&c.to_toml().unwrap()).unwrap(), c);
    }
}
