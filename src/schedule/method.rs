//! The policy names, as written in configs and on the command line.

use serde::{Deserialize, Serialize};

crate::named_enum! {
    /// The policy names, as written in configs and on the command line.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Method("method") {
        /// Constant amplitude.
        Triangular = "triangular",
        /// Amplitude halved every cycle.
        Triangular2 = "triangular2",
        /// Amplitude multiplied by `gamma` every iteration.
        ExpRange = "exp_range",
        /// One cycle over the whole run: warm up to `max_lr`, then anneal far below the start.
        OneCycle = "one_cycle",
    }
}
