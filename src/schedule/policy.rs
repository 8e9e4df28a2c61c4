//! Any schedule the trainer can follow, as one type: a cyclical one or one-cycle.

use super::clr::Clr;
use super::method::Method;
use super::one_cycle::OneCycle;

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
