//! The rules of `train --resume`, in one place: which flags may change (only the number of
//! epochs, the backend and where the data lives), the configuration the resumed run runs under,
//! and the checks that the data and the epoch count still fit the saved run.

use std::path::Path;

use crate::checkpoint::Checkpoint;
use crate::config::{Config, Overrides};
use crate::error::{Error, Result};
use crate::fit::Position;
use crate::saved_model::ModelInfo;

/// The given flags that would change what a resumed run computes.
pub fn refused_flags(o: &Overrides) -> Vec<&'static str> {
    [
        ("--method", o.method.is_some()),
        ("--batch-size", o.batch_size.is_some()),
        ("--base-lr", o.base_lr.is_some()),
        ("--max-lr", o.max_lr.is_some()),
        ("--step-size", o.step_size.is_some()),
        ("--step-size-down", o.step_size_down.is_some()),
        ("--gamma", o.gamma.is_some()),
        ("--cycle-momentum", o.cycle_momentum),
        ("--seed", o.seed.is_some()),
        ("--train-per-class", o.train_per_class.is_some()),
        ("--test-per-class", o.test_per_class.is_some()),
        ("--output", o.output.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect()
}

/// The checkpoint's own config with the allowed overrides; outputs go on next to the
/// checkpoint, wherever the run was started from.
pub fn config_for(checkpoint: &Checkpoint, overrides: &Overrides) -> Result<Config> {
    let refused = refused_flags(overrides);
    if !refused.is_empty() {
        return Err(Error::Argument(format!(
            "{} cannot change on --resume (the run would no longer be the one that was saved)",
            refused.join(", ")
        )));
    }
    let mut config = checkpoint.config.clone();
    config.apply(overrides);
    config.output.dir = checkpoint.output_dir();
    Ok(config)
}

/// A run can go on only up to its (possibly raised) number of epochs.
pub fn check_epochs(epochs: usize, position: &Position) -> Result<()> {
    let past_the_end = position.epochs_done > epochs
        || (position.epochs_done == epochs && position.batches_done > 0);
    if past_the_end {
        return Err(Error::Config(format!(
            "the run is already past training.epochs = {epochs} ({} epochs done)",
            position.epochs_done
        )));
    }
    Ok(())
}

/// The data at `path` must be the run's: the same classes and mean image (so the same training
/// images) as the checkpoint's model.
pub fn check_same_data(saved: &ModelInfo, now: &ModelInfo, path: &Path) -> Result<()> {
    if saved.classes != now.classes || saved.mean_image_hwc != now.mean_image_hwc {
        return Err(Error::data(
            path,
            "it is not the one the checkpoint was trained on (other classes or other training \
             images); resuming on it would not continue that run",
        ));
    }
    Ok(())
}
