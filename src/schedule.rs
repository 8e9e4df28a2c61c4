//! Learning-rate schedules as pure functions of the iteration: cyclical learning rates (Smith,
//! 2017) and the one-cycle policy (Smith, 2018).
//!
//! Cyclical, with `it` counting batches from 0 over the whole run and a cycle of `step_up`
//! iterations up then `step_down` down (equal in the paper: `step`):
//!
//! ```text
//! cycle = floor(1 + it / (2·step))
//! x     = |it/step − 2·cycle + 1|
//! lr    = base + (max − base) · max(0, 1 − x) · scale
//! ```
//!
//! with `scale` = 1 (`triangular`), `1/2^(cycle−1)` (`triangular2`) or `gamma^it` (`exp_range`),
//! or a named [`ScaleFn`] of the cycle or the iteration. [`CyclicLrScheduler`] is the thin
//! stateful adapter for Burn's [`LrScheduler`] trait: its only state is the iteration, which is
//! what a checkpoint saves.

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use serde::{Deserialize, Serialize};

/// The policy names, as written in configs and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Constant amplitude.
    Triangular,
    /// Amplitude halved every cycle.
    Triangular2,
    /// Amplitude multiplied by `gamma` every iteration.
    ExpRange,
    /// One cycle over the whole run: warm up to `max_lr`, then anneal far below the start.
    OneCycle,
}

impl Method {
    /// All methods, in the order `--help` lists them.
    pub const ALL: [Method; 4] = [
        Method::Triangular,
        Method::Triangular2,
        Method::ExpRange,
        Method::OneCycle,
    ];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Triangular => "triangular",
            Method::Triangular2 => "triangular2",
            Method::ExpRange => "exp_range",
            Method::OneCycle => "one_cycle",
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
        Method::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            format!("unknown method '{s}' (expected triangular, triangular2, exp_range or one_cycle)")
        })
    }
}

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

    /// `(last iteration of the phase, start rate, end rate)` for each phase.
    fn phases(&self) -> Vec<(f64, f64, f64)> {
        let warm_end = self.pct_start * self.total as f64 - 1.0;
        let last = self.total as f64 - 1.0;
        let (initial, max, min) = (self.initial_lr(), self.max_lr, self.min_lr());
        if self.three_phase {
            vec![
                (warm_end, initial, max),
                (2.0 * warm_end, max, initial),
                (last, initial, min),
            ]
        } else {
            vec![(warm_end, initial, max), (last, max, min)]
        }
    }

    /// The rate at iteration `it`; past the last iteration it stays at the last rate.
    pub fn lr(&self, it: u64) -> f64 {
        let step = it.min(self.total.saturating_sub(1)) as f64;
        let phases = self.phases();
        let mut start = 0.0;
        for (k, &(end, from, to)) in phases.iter().enumerate() {
            if step <= end || k == phases.len() - 1 {
                let pct = if end > start {
                    (step - start) / (end - start)
                } else {
                    1.0
                };
                return self.anneal.between(from, to, pct);
            }
            start = end;
        }
        self.min_lr()
    }
}

/// Any schedule the trainer can follow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    Cyclic(Clr),
    OneCycle(OneCycle),
}

impl Schedule {
    /// The learning rate for the batch at iteration `it` (0-based).
    pub fn lr(&self, it: u64) -> f64 {
        match self {
            Schedule::Cyclic(c) => c.lr(it),
            Schedule::OneCycle(o) => o.lr(it),
        }
    }

    /// The policy's name.
    pub fn method(&self) -> Method {
        match self {
            Schedule::Cyclic(c) => c.method,
            Schedule::OneCycle(_) => Method::OneCycle,
        }
    }

    /// Iterations in one cycle (the whole run for one-cycle).
    pub fn cycle_length(&self) -> u64 {
        match self {
            Schedule::Cyclic(c) => c.cycle_length(),
            Schedule::OneCycle(o) => o.total,
        }
    }

    /// One line on its shape.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Cyclic(c) => format!(
                "{}: lr {:e} → {:e}, {} iterations up, {} down",
                c.method, c.base_lr, c.max_lr, c.step_up, c.step_down
            ),
            Schedule::OneCycle(o) => format!(
                "one_cycle: lr {:.3e} → {:e} over {} iterations ({:.0}%, {}), then → {:.3e}{}",
                o.initial_lr(),
                o.max_lr,
                (o.pct_start * o.total as f64).round(),
                o.pct_start * 100.0,
                format!("{:?}", o.anneal).to_lowercase(),
                o.min_lr(),
                if o.three_phase { " (three phases)" } else { "" }
            ),
        }
    }
}

/// SGD momentum per iteration: constant, or cycling inversely to the learning rate between
/// `base` (at the LR's peak) and `max` (at the LR's base), as PyTorch's `cycle_momentum`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Momentum {
    Constant(f64),
    Cyclical { base: f64, max: f64 },
}

impl Momentum {
    /// The momentum for the batch at iteration `it` of `schedule`.
    pub fn at(&self, schedule: &Schedule, it: u64) -> f64 {
        let (base, max) = match *self {
            Momentum::Constant(m) => return m,
            Momentum::Cyclical { base, max } => (base, max),
        };
        match schedule {
            Schedule::Cyclic(c) => {
                max - (max - base) * c.height(it) * c.scale.value(it, c.cycle(it))
            }
            Schedule::OneCycle(o) => {
                // the LR's phases with the momentum running the other way
                let mirrored = OneCycle {
                    max_lr: base,
                    div_factor: base / max,
                    final_div_factor: 1.0,
                    ..*o
                };
                mirrored.lr(it)
            }
        }
    }

    /// Whether it changes over the run.
    pub fn cycles(&self) -> bool {
        matches!(self, Momentum::Cyclical { .. })
    }
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
    pub fn new(schedule: &Schedule, total: u64) -> Self {
        let cycle_length = schedule.cycle_length().max(1);
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
pub fn lr_sequence(schedule: Schedule, n: u64) -> Vec<f64> {
    let mut scheduler = CyclicLrScheduler::new(schedule);
    (0..n).map(|_| scheduler.step()).collect()
}

/// Burn [`LrScheduler`] over a [`Schedule`]: each `step` returns the LR for the next batch.
#[derive(Debug, Clone)]
pub struct CyclicLrScheduler {
    schedule: Schedule,
    iteration: u64,
}

impl CyclicLrScheduler {
    /// A scheduler that starts at iteration 0.
    pub fn new(schedule: Schedule) -> Self {
        Self {
            schedule,
            iteration: 0,
        }
    }

    /// The iteration whose LR the next `step` returns.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// The schedule it follows.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
}

const ITERATION_KEY: &str = "iteration";

impl LrScheduler for CyclicLrScheduler {
    fn step(&mut self) -> f64 {
        let lr = self.schedule.lr(self.iteration);
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
        Clr::symmetric(method, 1e-7, 1e-2, 4, 0.9)
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
        let tri = clr(Method::Triangular);
        assert_eq!(tri.cycle(0), 1);
        assert_eq!(tri.cycle(7), 1);
        assert_eq!(tri.cycle(8), 2);
        assert_eq!(tri.height(0), 0.0);
        assert_eq!(tri.height(1), 0.25);
        assert_eq!(tri.height(4), 1.0);
        assert_eq!(tri.height(5), 0.75);
        // the float formula of the paper gives the same values
        for it in 0..40u64 {
            let c = (1 + it / 8) as f64;
            let x = (it as f64 / 4.0 - 2.0 * c + 1.0).abs();
            assert!(close(tri.height(it), (1.0 - x).max(0.0)), "it {it}");
        }
    }

    #[test]
    fn reference_step_size_uses_integer_division() {
        // 50,000 images, batch 64: 781 iterations per epoch, 8 epochs -> 6248
        assert_eq!(step_size_iterations(8, 50_000, 64), 6248);
    }

    #[test]
    fn scheduler_steps_and_resumes_exactly() {
        let mut a = CyclicLrScheduler::new(Schedule::Cyclic(clr(Method::Triangular2)));
        let first: Vec<f64> = (0..10).map(|_| a.step()).collect();
        assert_eq!(first[0], 1e-7);
        assert_eq!(first[4], 1e-2);
        let record = a.to_record();
        let mut b = CyclicLrScheduler::new(Schedule::Cyclic(clr(Method::Triangular2)));
        b.load_record(record);
        assert_eq!(b.iteration(), 10);
        for _ in 0..20 {
            assert_eq!(a.step(), b.step());
        }
    }

    #[test]
    fn cycle_summary_counts_cycles_and_warns_mid_cycle() {
        let s = clr(Method::Triangular); // step 4: cycles of 8
        let whole = CycleSummary::new(&Schedule::Cyclic(s), 24);
        assert_eq!(
            (whole.cycle_length, whole.full_cycles, whole.into_last_cycle),
            (8, 3, 0)
        );
        assert_eq!(whole.mid_cycle_warning(4), None);
        let mid = CycleSummary::new(&Schedule::Cyclic(s), 28);
        assert_eq!((mid.full_cycles, mid.into_last_cycle), (3, 4));
        let warning = mid.mid_cycle_warning(4).unwrap();
        assert!(warning.contains("4 iterations into cycle 4"), "{warning}");
        assert!(
            warning.contains("after 24 (6 epochs) or 32 (8 epochs) iterations"),
            "{warning}"
        );
        assert_eq!(
            lr_sequence(Schedule::Cyclic(s), 9),
            (0..9).map(|it| s.lr(it)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn asymmetric_cycles_rise_and_fall_at_their_own_pace() {
        let c = Clr {
            step_up: 2,
            step_down: 6,
            ..clr(Method::Triangular)
        };
        let amp = 1e-2 - 1e-7;
        let heights: Vec<f64> = (0..10).map(|it| c.height(it)).collect();
        assert_eq!(
            heights,
            vec![
                0.0,
                0.5,
                1.0,
                5.0 / 6.0,
                4.0 / 6.0,
                0.5,
                2.0 / 6.0,
                1.0 / 6.0,
                0.0,
                0.5
            ]
        );
        assert_eq!(c.lr(2), 1e-2);
        assert!(close(c.lr(5), 1e-7 + amp * 0.5));
        assert_eq!((c.cycle(7), c.cycle(8)), (1, 2));
        // triangular2 halves per cycle of 8 as well
        let c2 = Clr {
            step_up: 2,
            step_down: 6,
            ..clr(Method::Triangular2)
        };
        assert!(close(c2.lr(10), 1e-7 + amp / 2.0));
    }

    #[test]
    fn named_scales_of_cycle_or_iteration() {
        let scale = |function, mode| Scale {
            function,
            mode,
            gamma: 0.5,
        };
        assert_eq!(
            scale(ScaleFn::Constant, ScaleMode::Cycle).value(100, 7),
            1.0
        );
        assert_eq!(
            scale(ScaleFn::Halving, ScaleMode::Cycle).value(100, 3),
            0.25
        );
        assert_eq!(
            scale(ScaleFn::Exp, ScaleMode::Iterations).value(3, 1),
            0.125
        );
        assert_eq!(scale(ScaleFn::Exp, ScaleMode::Cycle).value(300, 2), 0.25);
        assert_eq!(scale(ScaleFn::Inverse, ScaleMode::Cycle).value(0, 4), 0.25);
        assert_eq!(
            scale(ScaleFn::Inverse, ScaleMode::Iterations).value(0, 1),
            1.0
        );
        assert_eq!(
            scale(ScaleFn::InverseSqrt, ScaleMode::Cycle).value(0, 16),
            0.25
        );
        // no overflow or NaN far out
        for f in [
            ScaleFn::Halving,
            ScaleFn::Exp,
            ScaleFn::Inverse,
            ScaleFn::InverseSqrt,
        ] {
            let v = scale(f, ScaleMode::Iterations).value(u64::MAX, u64::MAX);
            assert!(v.is_finite() && (0.0..=1.0).contains(&v), "{f:?}: {v}");
        }
        // a custom scale in a schedule: 1/cycle
        let c = Clr {
            scale: scale(ScaleFn::Inverse, ScaleMode::Cycle),
            ..clr(Method::Triangular)
        };
        assert!(close(c.lr(4 + 8 * 3), 1e-7 + (1e-2 - 1e-7) / 4.0));
    }

    fn one_cycle(three_phase: bool, anneal: Anneal) -> OneCycle {
        OneCycle {
            max_lr: 1.0,
            total: 100,
            div_factor: 25.0,
            final_div_factor: 1e4,
            pct_start: 0.3,
            anneal,
            three_phase,
        }
    }

    #[test]
    fn one_cycle_matches_pytorchs_phases_and_ends_on_the_last_iteration() {
        let o = one_cycle(false, Anneal::Cos);
        assert!(close(o.lr(0), 0.04)); // max / 25
        // phase 1 ends at 0.3 * 100 - 1 = 29: the peak
        assert!(close(o.lr(29), 1.0));
        // half-way through phase 1 (step 14.5 of 29): the cosine's middle
        let mid = o.lr(14);
        assert!(close(
            mid,
            1.0 + (0.04 - 1.0) / 2.0 * ((PI * 14.0 / 29.0).cos() + 1.0)
        ));
        // the last iteration is exactly the minimum, and nothing runs past it
        assert_eq!(o.lr(99), o.min_lr());
        assert!(close(o.min_lr(), 0.04 / 1e4));
        assert_eq!(o.lr(100), o.lr(99));
        assert_eq!(o.lr(10_000), o.lr(99));
        // linear annealing: the middle of phase 2 (29..99) is the midpoint of max and min
        let l = one_cycle(false, Anneal::Linear);
        assert!(close(l.lr(64), (1.0 + 0.04 / 1e4) / 2.0));
        // three phases: up to 29, back to the start at 58, then down to the minimum at 99
        let t = one_cycle(true, Anneal::Linear);
        assert_eq!(t.lr(29), 1.0);
        assert!(close(t.lr(58), 0.04));
        assert!(close(t.lr(99), 0.04 / 1e4));
        let s = Schedule::OneCycle(o);
        assert_eq!(s.cycle_length(), 100);
        assert_eq!(CycleSummary::new(&s, 100).mid_cycle_warning(10), None);
    }

    #[test]
    fn cyclical_momentum_mirrors_the_learning_rate() {
        let m = Momentum::Cyclical {
            base: 0.85,
            max: 0.95,
        };
        let tri = Schedule::Cyclic(clr(Method::Triangular));
        assert_eq!(m.at(&tri, 0), 0.95); // LR at base: momentum at max
        assert!(close(m.at(&tri, 4), 0.85)); // LR at peak: momentum at base
        assert!(close(m.at(&tri, 2), 0.90));
        assert!(close(m.at(&tri, 8), 0.95));
        // the amplitude scale applies to momentum too (triangular2, second cycle: half)
        let tri2 = Schedule::Cyclic(clr(Method::Triangular2));
        assert!(close(m.at(&tri2, 12), 0.90));
        assert_eq!(Momentum::Constant(0.9).at(&tri, 4), 0.9);
        // one-cycle: max → base while the LR warms up, back to max at the end
        let o = Schedule::OneCycle(one_cycle(false, Anneal::Linear));
        assert!(close(m.at(&o, 0), 0.95));
        assert!(close(m.at(&o, 29), 0.85));
        assert!(close(m.at(&o, 99), 0.95));
        assert!(close(m.at(&o, 64), 0.90));
    }

    #[test]
    fn method_names_round_trip() {
        for m in Method::ALL {
            assert_eq!(m.name().parse::<Method>(), Ok(m));
        }
        assert!("cosine".parse::<Method>().is_err());
    }
}
