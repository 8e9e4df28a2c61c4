//! SGD momentum per iteration, cycling against the learning rate (PyTorch's `cycle_momentum`).

use super::policy::Schedule;

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
            // the LR's phases with the momentum running the other way, back to max at the end
            Schedule::OneCycle(o) => o.value_at(it, max, base, max),
        }
    }

    /// Whether it changes over the run.
    pub fn cycles(&self) -> bool {
        matches!(self, Momentum::Cyclical { .. })
    }
}
