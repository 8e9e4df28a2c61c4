//! Smith's one-cycle policy (2018) as PyTorch's `OneCycleLR` defines it, composed of annealing
//! [`Phase`]s laid end to end.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

/// How the one-cycle policy anneals between two rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anneal {
    /// Half a cosine wave (PyTorch's and fastai's default).
    Cos,
    /// A straight line.
    Linear,
}

impl Anneal {
    /// From `start` (pct 0) to `end` (pct 1).
    pub fn between(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            Anneal::Linear => start + (end - start) * pct,
        }
    }
}

/// Smith's 1cycle as PyTorch's `OneCycleLR` defines it: from `max_lr / div_factor` up to
/// `max_lr` over the first `pct_start` of the run, then down to
/// `max_lr / div_factor / final_div_factor` at the last iteration (three-phase: back to the
/// start first, then down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneCycle {
    pub max_lr: f64,
    pub total: u64,
    pub div_factor: f64,
    pub final_div_factor: f64,
    pub pct_start: f64,
    pub anneal: Anneal,
    pub three_phase: bool,
}

impl OneCycle {
    /// First learning rate.
    pub fn initial_lr(&self) -> f64 {
        self.max_lr / self.div_factor
    }

    /// Last learning rate.
    pub fn min_lr(&self) -> f64 {
        self.initial_lr() / self.final_div_factor
    }

    /// At iteration `it`, a quantity that goes from `start` to `peak` over the warm-up, then
    /// to `end` at the last iteration (three-phase: back to `start` first, then to `end`). The
    /// learning rate is one such quantity; cyclical momentum is another, with its own end points.
    /// Past the last iteration it stays at `end`.
    pub fn value_at(&self, it: u64, start: f64, peak: f64, end: f64) -> f64 {
        let warm_end = self.pct_start * self.total as f64 - 1.0;
        let last = self.total as f64 - 1.0;
        let phase = |last, start, end| Phase {
            last,
            start,
            end,
            anneal: self.anneal,
        };
        let step = it.min(self.total.saturating_sub(1)) as f64;
        if self.three_phase {
            follow(
                &[
                    phase(warm_end, start, peak),
                    phase(2.0 * warm_end, peak, start),
                    phase(last, start, end),
                ],
                step,
            )
        } else {
            follow(
                &[phase(warm_end, start, peak), phase(last, peak, end)],
                step,
            )
        }
    }

    /// The rate at iteration `it`; past the last iteration it stays at the last rate.
    pub fn lr(&self, it: u64) -> f64 {
        self.value_at(it, self.initial_lr(), self.max_lr, self.min_lr())
    }
}

/// One piece of a schedule made of pieces: from `start` to `end`, reached at iteration `last`;
/// it begins where the previous piece ended (the first at iteration 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    pub last: f64,
    pub start: f64,
    pub end: f64,
    pub anneal: Anneal,
}

/// The value at `step` of phases laid end to end (fastai's `combine_scheds`); the last phase
/// also covers any step beyond it.
pub fn follow(phases: &[Phase], step: f64) -> f64 {
    let mut first = 0.0;
    for (k, p) in phases.iter().enumerate() {
        if step <= p.last || k + 1 == phases.len() {
            let pct = if p.last > first {
                (step - first) / (p.last - first)
            } else {
                1.0
            };
            return p.anneal.between(p.start, p.end, pct);
        }
        first = p.last;
    }
    f64::NAN
}
