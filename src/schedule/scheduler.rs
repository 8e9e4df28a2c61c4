//! The thin stateful adapter for Burn's [`LrScheduler`] trait: its only state is the iteration,
//! which is what a checkpoint saves.

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};

use super::policy::Schedule;

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

/// The learning rates of the first `n` iterations, produced by the same [`CyclicLrScheduler`]
/// the training loop steps (so a preview and a run cannot disagree).
pub fn lr_sequence(schedule: Schedule, n: u64) -> Vec<f64> {
    let mut scheduler = CyclicLrScheduler::new(schedule);
    (0..n).map(|_| scheduler.step()).collect()
}
