//! The CLR formula (Smith, 2017): a triangle wave between `base_lr` and `max_lr` whose
//! amplitude a [`Scale`] shrinks, with `it` counting batches from 0 over the whole run:
//!
//! ```text
//! cycle = floor(1 + it / (2·step))
//! x     = |it/step − 2·cycle + 1|
//! lr    = base + (max − base) · max(0, 1 − x) · scale
//! ```
//!
//! `scale` = 1 (`triangular`), `1/2^(cycle−1)` (`triangular2`), `gamma^it` (`exp_range`), or a
//! named [`ScaleFn`] of the cycle or the iteration. Cycles may rise and fall at different paces
//! (`step_up`, `step_down`), as PyTorch's `CyclicLR`.

use serde::{Deserialize, Serialize};

use super::method::Method;

/// Named amplitude scales for cyclical schedules, of `x` = the cycle (from 1) or the iteration
/// (from 0), as [`ScaleMode`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleFn {
    /// 1.
    Constant,
    /// `1 / 2^(x − 1)` (triangular2's).
    Halving,
    /// `gamma^x` (exp_range's).
    Exp,
    /// `1 / x`.
    Inverse,
    /// `1 / sqrt(x)`.
    InverseSqrt,
}

/// What a [`ScaleFn`] is a function of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleMode {
    /// The cycle number, from 1.
    Cycle,
    /// The iteration, from 0.
    Iterations,
}

/// An amplitude scale: function, argument, and `gamma` for [`ScaleFn::Exp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub function: ScaleFn,
    pub mode: ScaleMode,
    pub gamma: f64,
}

impl Scale {
    /// The scale a cyclical method implies.
    pub fn of(method: Method, gamma: f64) -> Scale {
        let (function, mode) = match method {
            Method::Triangular | Method::OneCycle => (ScaleFn::Constant, ScaleMode::Cycle),
            Method::Triangular2 => (ScaleFn::Halving, ScaleMode::Cycle),
            Method::ExpRange => (ScaleFn::Exp, ScaleMode::Iterations),
        };
        Scale {
            function,
            mode,
            gamma,
        }
    }

    /// The scale at iteration `it` of cycle `cycle`. Large arguments underflow to 0 cleanly.
    pub fn value(&self, it: u64, cycle: u64) -> f64 {
        let x = match self.mode {
            ScaleMode::Cycle => cycle,
            ScaleMode::Iterations => it,
        } as f64;
        match self.function {
            ScaleFn::Constant => 1.0,
            ScaleFn::Halving => 0.5f64.powf((x - 1.0).max(0.0)),
            ScaleFn::Exp => self.gamma.powf(x),
            // the iteration counts from 0: 1/0 is taken as 1
            ScaleFn::Inverse => 1.0 / x.max(1.0),
            ScaleFn::InverseSqrt => 1.0 / x.max(1.0).sqrt(),
        }
    }
}

/// A fully specified cyclical schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clr {
    /// Lower bound of the learning rate.
    pub base_lr: f64,
    /// Upper bound of the learning rate (reached at the peak of the first cycle).
    pub max_lr: f64,
    /// Iterations from the base to the peak (> 0).
    pub step_up: u64,
    /// Iterations from the peak back to the base (> 0).
    pub step_down: u64,
    /// The policy (for display; `scale` carries its effect).
    pub method: Method,
    pub scale: Scale,
}

impl Clr {
    /// A symmetric schedule of `method` with half-cycle `step_size`.
    pub fn symmetric(
        method: Method,
        base_lr: f64,
        max_lr: f64,
        step_size: u64,
        gamma: f64,
    ) -> Self {
        Clr {
            base_lr,
            max_lr,
            step_up: step_size,
            step_down: step_size,
            method,
            scale: Scale::of(method, gamma),
        }
    }

    /// The learning rate for the batch at iteration `it` (0-based).
    pub fn lr(&self, it: u64) -> f64 {
        self.base_lr
            + (self.max_lr - self.base_lr) * self.height(it) * self.scale.value(it, self.cycle(it))
    }

    /// Iterations in one cycle.
    pub fn cycle_length(&self) -> u64 {
        self.step_up + self.step_down
    }

    /// The 1-based cycle of iteration `it`: `floor(1 + it / cycle_length)`.
    pub fn cycle(&self, it: u64) -> u64 {
        1 + it / self.cycle_length()
    }

    /// The triangle wave `max(0, 1 − x)`: 0 at the start and end of a cycle, 1 at its peak.
    /// Computed on integers so cycle boundaries and peaks are exact.
    pub fn height(&self, it: u64) -> f64 {
        let pos = it % self.cycle_length();
        if pos <= self.step_up {
            pos as f64 / self.step_up as f64
        } else {
            (self.cycle_length() - pos) as f64 / self.step_down as f64
        }
    }
}
