//! Stopping a run cleanly: Ctrl-C (SIGINT) or SIGTERM asks the training loop to stop after the
//! current batch and write a checkpoint; a second signal exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// Exit code of a second Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_AT_ONCE: i32 = 130;

/// A stop request, shared by whoever asks (a signal, a test) and the training loop.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// A request that nothing sets (benchmarks, library use).
    pub fn new() -> Self {
        Self::default()
    }

    /// A request set by SIGINT or SIGTERM; while it is set, a second signal ends the process.
    pub fn on_signals() -> Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        use signal_hook::flag;
        let interrupt = Self::new();
        for signal in [SIGINT, SIGTERM] {
            // registered first, so it sees the flag before this signal sets it
            flag::register_conditional_shutdown(signal, EXIT_AT_ONCE, interrupt.0.clone())
                .and_then(|_| flag::register(signal, interrupt.0.clone()))
                .map_err(|e| Error::System(format!("cannot install signal handlers: {e}")))?;
        }
        Ok(interrupt)
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
