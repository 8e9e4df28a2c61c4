//! Learning-rate schedules as pure functions of the iteration, plain numbers in and out:
//!
//! - [`method`], [`policy`] — the policy names, and any schedule as one type;
//! - [`clr`] — the CLR formula (Smith, 2017): `triangular`, `triangular2`, `exp_range`, named
//!   amplitude scales, asymmetric cycles;
//! - [`one_cycle`] — the one-cycle policy (Smith, 2018), composed of annealing phases;
//! - [`momentum`] — SGD momentum per iteration, constant or cycling against the LR;
//! - [`cycles`] — where a run stops against the cycles;
//! - [`scheduler`] — [`CyclicLrScheduler`], the thin stateful adapter for Burn's `LrScheduler`.

pub mod clr;
pub mod cycles;
pub mod method;
pub mod momentum;
pub mod one_cycle;
pub mod policy;
pub mod scheduler;
#[cfg(test)]
mod tests;

pub use clr::{Clr, Scale, ScaleFn, ScaleMode};
pub use cycles::CycleSummary;
pub use method::Method;
pub use momentum::Momentum;
pub use one_cycle::{Anneal, OneCycle, Phase};
pub use policy::Schedule;
pub use scheduler::{CyclicLrScheduler, lr_sequence};
