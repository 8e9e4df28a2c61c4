//! Checkpoints: after every epoch, `OUTPUT/checkpoint/` holds what a run needs to go on exactly
//! where it stopped — weights, optimiser state (momentum buffers), the LR scheduler's Burn
//! record (its iteration), the history so far and the resolved config. Shuffling and
//! augmentation are seeded by (seed, epoch), so the epoch number restores them.
//!
//! The folder is written under a temporary name and swapped in by renames, so a crash while
//! writing leaves the previous checkpoint in place.

use std::path::{Path, PathBuf};

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::history::History;
use crate::schedule::CyclicLrScheduler;
use crate::train::Trainer;

/// The checkpoint folder inside an output folder.
pub const DIR: &str = "checkpoint";
const SCHEDULER_FILE: &str = "scheduler.bpk";
const STATE_FILE: &str = "state.json";
const CONFIG_FILE: &str = "config.toml";

/// The plain-data part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Epochs trained so far.
    pub epochs_done: usize,
    pub history: History,
}

/// A checkpoint read back, ready to resume.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: Config,
    pub state: State,
}

/// Write the checkpoint of a run after `epochs_done` epochs into `output/checkpoint/`.
pub fn save(
    output: &Path,
    config: &Config,
    trainer: &Trainer,
    scheduler: &CyclicLrScheduler,
    history: &History,
    epochs_done: usize,
) -> Result<()> {
    let final_dir = output.join(DIR);
    let tmp = output.join(format!(".{DIR}.tmp"));
    let old = output.join(format!(".{DIR}.old"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io("cannot create", &tmp, e))?;
    trainer.save(&tmp)?;
    let scheduler_path = tmp.join(SCHEDULER_FILE);
    scheduler
        .to_record()
        .save(&scheduler_path)
        .map_err(|e| Error::Model {
            path: scheduler_path.clone(),
            message: e.to_string(),
        })?;
    let state = State {
        epochs_done,
        history: history.clone(),
    };
    let json = serde_json::to_string(&state).unwrap_or_default();
    write(&tmp.join(STATE_FILE), &json)?;
    write(&tmp.join(CONFIG_FILE), &config.to_toml())?;
    // swap: the old checkpoint stays complete until the new one is in place
    let _ = std::fs::remove_dir_all(&old);
    if final_dir.exists() {
        std::fs::rename(&final_dir, &old)
            .map_err(|e| Error::io("cannot replace", &final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| Error::io("cannot write", &final_dir, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn write(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content).map_err(|e| Error::io("cannot write", path, e))
}

/// Read the checkpoint of an output folder (or a checkpoint folder itself).
pub fn load(path: &Path) -> Result<Checkpoint> {
    let dir = if path.join(STATE_FILE).is_file() {
        path.to_path_buf()
    } else {
        path.join(DIR)
    };
    let state_path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&state_path)
        .map_err(|e| Error::io("no checkpoint to resume from:", &state_path, e))?;
    let state: State = serde_json::from_str(&text)
        .map_err(|e| Error::data(&state_path, format!("not a clrtrain checkpoint: {e}")))?;
    let config = Config::from_file(&dir.join(CONFIG_FILE))?;
    Ok(Checkpoint { dir, config, state })
}

impl Checkpoint {
    /// Put the weights, optimiser state and scheduler position back.
    pub fn restore(&self, trainer: &mut Trainer, scheduler: &mut CyclicLrScheduler) -> Result<()> {
        trainer.load(&self.dir)?;
        let path = self.dir.join(SCHEDULER_FILE);
        let record = LrSchedulerRecord::load(&path).map_err(|e| Error::Model {
            path: path.clone(),
            message: e.to_string(),
        })?;
        scheduler.load_record(record);
        let expected = self.state.history.lrs.len() as u64;
        if scheduler.iteration() != expected {
            return Err(Error::data(
                &path,
                format!(
                    "the scheduler is at iteration {}, the history at {expected}",
                    scheduler.iteration()
                ),
            ));
        }
        Ok(())
    }
}
