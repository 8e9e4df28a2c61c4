//! Where a run's length falls against the schedule's cycles, and the warning when it stops
//! mid-cycle.

use super::policy::Schedule;

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
