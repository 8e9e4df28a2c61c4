//! Cyclical learning rates (Smith, 2017), as pure functions of the iteration.
//!
//! The formula, with `it` counting batches from 0 over the whole run and `step` the half-cycle
//! length in iterations:
//!
//! ```text
//! cycle = floor(1 + it / (2·step))
//! x     = |it/step − 2·cycle + 1|
//! lr    = base + (max − base) · max(0, 1 − x) · scale
//! ```
//!
//! with `scale` = 1 (`triangular`), `1/2^(cycle−1)` (`triangular2`) or `gamma^it` (`exp_range`).
//! [`CyclicLrScheduler`] is the thin stateful adapter for Burn's [`LrScheduler`] trait: its only
//! state is the iteration, which is what a checkpoint saves.

use std::fmt;
use std::str::FromStr;

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use serde::{Deserialize, Serialize};

/// The CLR policy names, as written in configs and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Constant amplitude.
    Triangular,
    /// Amplitude halved every cycle.
    Triangular2,
    /// Amplitude multiplied by `gamma` every iteration.
    ExpRange,
}

impl Method {
    /// All methods, in the order `--help` lists them.
    pub const ALL: [Method; 3] = [Method::Triangular, Method::Triangular2, Method::ExpRange];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Triangular => "triangular",
            Method::Triangular2 => "triangular2",
            Method::ExpRange => "exp_range",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!("unknown method '{s}' (expected triangular, triangular2 or exp_range)")
            })
    }
}

/// A fully specified cyclical schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clr {
    /// Lower bound of the learning rate.
    pub base_lr: f64,
    /// Upper bound of the learning rate (reached at the peak of the first cycle).
    pub max_lr: f64,
    /// Half-cycle length in iterations (> 0).
    pub step_size: u64,
    /// Amplitude policy.
    pub method: Method,
    /// Decay per iteration for `exp_range` (ignored otherwise).
    pub gamma: f64,
}

impl Clr {
    /// The learning rate for the batch at iteration `it` (0-based).
    pub fn lr(&self, it: u64) -> f64 {
        let amplitude = (self.max_lr - self.base_lr) * triangle(it, self.step_size);
        self.base_lr + amplitude * self.scale(it)
    }

    /// The amplitude scale of the policy at iteration `it`.
    pub fn scale(&self, it: u64) -> f64 {
        match self.method {
            Method::Triangular => 1.0,
            // 0.5^(cycle-1) underflows cleanly to 0 for huge cycle counts.
            Method::Triangular2 => {
                let halvings = (cycle(it, self.step_size) - 1).min(i32::MAX as u64) as i32;
                0.5f64.powi(halvings)
            }
            Method::ExpRange => self.gamma.powf(it as f64),
        }
    }
}

/// The 1-based cycle that iteration `it` belongs to: `floor(1 + it / (2·step))`.
pub fn cycle(it: u64, step_size: u64) -> u64 {
    1 + it / (2 * step_size)
}

/// The triangle wave `max(0, 1 − x)` with `x = |it/step − 2·cycle + 1|`: 0 at the start and end
/// of a cycle, 1 at its peak. Computed on integers so cycle boundaries and peaks are exact.
pub fn triangle(it: u64, step_size: u64) -> f64 {
    let pos = it % (2 * step_size);
    let distance_from_peak = pos.abs_diff(step_size);
    (step_size - distance_from_peak) as f64 / step_size as f64
}

/// Step size in iterations from a step size in epochs, as the reference computes it:
/// `step_size_epochs · (train_size / batch_size)` with integer division.
pub fn step_size_iterations(step_size_epochs: u64, train_size: usize, batch_size: usize) -> u64 {
    step_size_epochs * (train_size / batch_size) as u64
}

/// Where a run of `total` iterations stands against the cycles of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleSummary {
    /// Iterations in one full cycle (`2 · step_size`).
    pub cycle_length: u64,
    /// Whole cycles the run completes.
    pub full_cycles: u64,
    /// Iterations run into the last, unfinished cycle (0 when the run ends with a cycle).
    pub into_last_cycle: u64,
}

impl CycleSummary {
    /// Summary for a run of `total` iterations.
    pub fn new(clr: &Clr, total: u64) -> Self {
        let cycle_length = 2 * clr.step_size;
        Self {
            cycle_length,
            full_cycles: total / cycle_length,
            into_last_cycle: total % cycle_length,
        }
    }

    /// A warning when the run stops mid-cycle: the CLR paper recommends ending a run where a
    /// cycle ends, at the base learning rate.
    pub fn mid_cycle_warning(&self, iterations_per_epoch: u64) -> Option<String> {
        if self.into_last_cycle == 0 {
            return None;
        }
        let shorter = self.full_cycles * self.cycle_length;
        let longer = shorter + self.cycle_length;
        let epochs = |it: u64| match iterations_per_epoch {
            0 => String::new(),
            n if it.is_multiple_of(n) => format!(" ({} epochs)", it / n),
            n => format!(" ({:.2} epochs)", it as f64 / n as f64),
        };
        Some(format!(
            "the run stops {} iterations into cycle {} (a cycle is {} iterations), away from the base learning rate; \
             end the run after {shorter}{} or {longer}{} iterations to finish a cycle",
            self.into_last_cycle,
            self.full_cycles + 1,
            self.cycle_length,
            epochs(shorter),
            epochs(longer),
        ))
    }
}

/// The learning rates of the first `n` iterations, produced by the same [`CyclicLrScheduler`]
/// the training loop steps (so a preview and a run cannot disagree).
pub fn lr_sequence(clr: Clr, n: u64) -> Vec<f64> {
    let mut scheduler = CyclicLrScheduler::new(clr);
    (0..n).map(|_| scheduler.step()).collect()
}

/// Burn [`LrScheduler`] over a [`Clr`]: each `step` returns the LR for the next batch.
#[derive(Debug, Clone)]
pub struct CyclicLrScheduler {
    clr: Clr,
    iteration: u64,
}

impl CyclicLrScheduler {
    /// A scheduler that starts at iteration 0.
    pub fn new(clr: Clr) -> Self {
        Self { clr, iteration: 0 }
    }

    /// The iteration whose LR the next `step` returns.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// The schedule it follows.
    pub fn clr(&self) -> &Clr {
        &self.clr
    }
}

const ITERATION_KEY: &str = "iteration";

impl LrScheduler for CyclicLrScheduler {
    fn step(&mut self) -> f64 {
        let lr = self.clr.lr(self.iteration);
        self.iteration += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar(ITERATION_KEY, self.iteration)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(iteration) = record.scalar::<u64>(ITERATION_KEY) {
            self.iteration = iteration;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clr(method: Method) -> Clr {
        Clr {
            base_lr: 1e-7,
            max_lr: 1e-2,
            step_size: 4,
            method,
            gamma: 0.9,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-15 + 1e-12 * b.abs()
    }

    #[test]
    fn triangular_start_peak_end_of_each_cycle() {
        let s = clr(Method::Triangular);
        for cycle_start in [0u64, 8, 16, 800] {
            assert_eq!(s.lr(cycle_start), 1e-7, "start of cycle at {cycle_start}");
            assert_eq!(s.lr(cycle_start + 4), 1e-2, "peak at {}", cycle_start + 4);
        }
        // quarter points: half amplitude
        assert!(close(s.lr(2), 1e-7 + (1e-2 - 1e-7) * 0.5));
        assert!(close(s.lr(6), 1e-7 + (1e-2 - 1e-7) * 0.5));
        // last iteration of the first cycle: one step above base
        assert!(close(s.lr(7), 1e-7 + (1e-2 - 1e-7) * 0.25));
    }

    #[test]
    fn triangular2_halves_every_cycle() {
        let s = clr(Method::Triangular2);
        let amp = 1e-2 - 1e-7;
        assert!(close(s.lr(4), 1e-7 + amp));
        assert!(close(s.lr(12), 1e-7 + amp / 2.0));
        assert!(close(s.lr(20), 1e-7 + amp / 4.0));
        assert!(close(s.lr(10), 1e-7 + amp / 2.0 * 0.5));
        assert_eq!(s.lr(16), 1e-7);
        // a huge cycle count underflows to the base instead of overflowing
        assert_eq!(s.lr(8 * 5000 + 4), 1e-7);
    }

    #[test]
    fn exp_range_decays_with_gamma_per_iteration() {
        let s = clr(Method::ExpRange);
        let amp = 1e-2 - 1e-7;
        assert_eq!(s.lr(0), 1e-7);
        assert!(close(s.lr(4), 1e-7 + amp * 0.9f64.powi(4)));
        assert!(close(s.lr(12), 1e-7 + amp * 0.9f64.powi(12)));
        assert!(close(s.lr(2), 1e-7 + amp * 0.5 * 0.81));
        assert_eq!(s.lr(4 + 8 * 10_000_000), 1e-7);
    }

    #[test]
    fn cycle_and_triangle_follow_the_formula() {
        assert_eq!(cycle(0, 4), 1);
        assert_eq!(cycle(7, 4), 1);
        assert_eq!(cycle(8, 4), 2);
        assert_eq!(triangle(0, 4), 0.0);
        assert_eq!(triangle(1, 4), 0.25);
        assert_eq!(triangle(4, 4), 1.0);
        assert_eq!(triangle(5, 4), 0.75);
        // the float formula of the paper gives the same values
        for it in 0..40u64 {
            let c = (1 + it / 8) as f64;
            let x = (it as f64 / 4.0 - 2.0 * c + 1.0).abs();
            assert!(close(triangle(it, 4), (1.0 - x).max(0.0)), "it {it}");
        }
    }

    #[test]
    fn reference_step_size_uses_integer_division() {
        // 50,000 images, batch 64: 781 iterations per epoch, 8 epochs -> 6248
        assert_eq!(step_size_iterations(8, 50_000, 64), 6248);
    }

    #[test]
    fn scheduler_steps_and_resumes_exactly() {
        let mut a = CyclicLrScheduler::new(clr(Method::Triangular2));
        let first: Vec<f64> = (0..10).map(|_| a.step()).collect();
        assert_eq!(first[0], 1e-7);
        assert_eq!(first[4], 1e-2);
        let record = a.to_record();
        let mut b = CyclicLrScheduler::new(clr(Method::Triangular2));
        b.load_record(record);
        assert_eq!(b.iteration(), 10);
        for _ in 0..20 {
            assert_eq!(a.step(), b.step());
        }
    }

    #[test]
    fn cycle_summary_counts_cycles_and_warns_mid_cycle() {
        let s = clr(Method::Triangular); // step 4: cycles of 8
        let whole = CycleSummary::new(&s, 24);
        assert_eq!(
            (whole.cycle_length, whole.full_cycles, whole.into_last_cycle),
            (8, 3, 0)
        );
        assert_eq!(whole.mid_cycle_warning(4), None);
        let mid = CycleSummary::new(&s, 28);
        assert_eq!((mid.full_cycles, mid.into_last_cycle), (3, 4));
        let warning = mid.mid_cycle_warning(4).unwrap();
        assert!(warning.contains("4 iterations into cycle 4"), "{warning}");
        assert!(
            warning.contains("after 24 (6 epochs) or 32 (8 epochs) iterations"),
            "{warning}"
        );
        assert_eq!(
            lr_sequence(s, 9),
            (0..9).map(|it| s.lr(it)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn method_names_round_trip() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>(), Ok(m));
        }
        assert!("cosine".parse::<Method>().is_err());
    }
}
