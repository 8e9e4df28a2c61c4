//! Checkpoints: after every epoch (and when a run is interrupted mid-epoch), a folder in
//! `OUTPUT/checkpoints/` holds what the run needs to go on exactly where it stopped — the model
//! file (weights, classes, mean image), the optimiser's momentum buffers, the LR scheduler's Burn
//! record (its iteration), the position in the run with its partial sums, the history so far and
//! the resolved config. Every random number of a run is derived from (seed, epoch, iteration), so
//! the position restores them too.
//!
//! Each checkpoint is written under a hidden temporary name, flushed to disk, and renamed into
//! place, so a crash while writing never leaves a broken checkpoint under a final name. The
//! last `output.keep_checkpoints` are kept, plus the best by validation accuracy.

use std::fs::File;
use std::path::{Path, PathBuf};

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::fit::{Position, TrainState};
use crate::history::History;
use crate::outputs::{CHECKPOINTS, CONFIG, SCHEDULER, STATE, write_file};
use crate::saved_model::ModelInfo;

/// The plain-data part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub position: Position,
    pub history: History,
}

/// A checkpoint read back, ready to resume.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: Config,
    pub state: State,
}

/// What a checkpoint is made of.
pub struct Parts<'a> {
    pub config: &'a Config,
    pub state: &'a TrainState,
    pub info: &'a ModelInfo,
}

/// Folder name of the checkpoint at `position`: `epoch-0003`, or `epoch-0003-batch-00012` for
/// 12 batches into epoch 4. Names sort in training order.
pub fn name(position: &Position) -> String {
    match position.batches_done {
        0 => format!("epoch-{:04}", position.epochs_done),
        b => format!("epoch-{:04}-batch-{b:05}", position.epochs_done),
    }
}

/// Write the checkpoint at the state's position into `output/checkpoints/`, then drop the ones
/// no longer kept. Returns its folder.
pub fn save(output: &Path, parts: &Parts) -> Result<PathBuf> {
    let root = output.join(CHECKPOINTS);
    let state = State {
        position: parts.state.position.clone(),
        history: parts.state.history.clone(),
    };
    std::fs::create_dir_all(&root).map_err(|e| Error::io("cannot create", &root, e))?;
    let name = name(&state.position);
    let tmp = root.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io("cannot create", &tmp, e))?;
    write_parts(&tmp, parts, &state)?;
    let final_dir = root.join(&name);
    if final_dir.exists() {
        // the same point reached again (a run resumed from an older checkpoint)
        let old = root.join(format!(".{name}.old"));
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(&final_dir, &old)
            .map_err(|e| Error::io("cannot replace", &final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| Error::io("cannot write", &final_dir, e))?;
    sync(&root)?;
    prune(&root, parts.config.output.keep_checkpoints, &state.history)?;
    Ok(final_dir)
}

/// Every file of a checkpoint, each flushed to disk.
fn write_parts(dir: &Path, parts: &Parts, state: &State) -> Result<()> {
    parts.state.trainer.save(dir, parts.info)?;
    let scheduler_path = dir.join(SCHEDULER);
    let record = parts.state.scheduler.to_record();
    record
        .save(&scheduler_path)
        .map_err(|e| Error::model(&scheduler_path, e))?;
    let json =
        serde_json::to_string(state).map_err(|e| Error::encode("the checkpoint state", e))?;
    write_file(&dir.join(STATE), &json)?;
    write_file(&dir.join(CONFIG), &parts.config.to_toml()?)?;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))? {
        sync(&entry.map_err(|e| Error::io("cannot list", dir, e))?.path())?;
    }
    sync(dir)
}

/// Flush a file or folder to disk, so a rename never publishes data still in memory.
fn sync(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("cannot flush", path, e))
}

/// The names of the entries in `root`; an entry that cannot be read is an error, not skipped.
fn entry_names(root: &Path) -> Result<Vec<String>> {
    let list_error = |e| Error::io("cannot list", root, e);
    std::fs::read_dir(root)
        .map_err(list_error)?
        .map(|entry| {
            let entry = entry.map_err(list_error)?;
            Ok(entry.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

/// Complete checkpoints in `root`, oldest first.
fn complete(root: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = entry_names(root)?
        .into_iter()
        .filter(|n| n.starts_with("epoch-") && root.join(n).join(STATE).is_file())
        .collect();
    names.sort();
    Ok(names)
}

/// The epoch with the best validation accuracy (the first of equals), 1-based.
pub fn best_epoch(history: &History) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for record in &history.epochs {
        if best.is_none_or(|(_, acc)| record.val_accuracy > acc) {
            best = Some((record.epoch, record.val_accuracy));
        }
    }
    best.map(|(epoch, _)| epoch)
}

/// Which of `names` (oldest first) to keep: the last `keep`, and the best epoch's.
pub fn kept(names: &[String], keep: usize, best: Option<usize>) -> Vec<String> {
    let best_name = best.map(|epoch| {
        name(&Position {
            epochs_done: epoch,
            ..Position::default()
        })
    });
    let recent = names.len().saturating_sub(keep);
    names
        .iter()
        .enumerate()
        .filter(|(i, n)| *i >= recent || Some(*n) == best_name.as_ref())
        .map(|(_, n)| n.clone())
        .collect()
}

/// Remove the checkpoints not kept and what interrupted writes left behind.
fn prune(root: &Path, keep: usize, history: &History) -> Result<()> {
    let names = complete(root)?;
    let kept = kept(&names, keep, best_epoch(history));
    for name in entry_names(root)? {
        if name.starts_with("epoch-") && !kept.contains(&name) {
            // renamed first: a crash while deleting leaves a hidden leftover, never a checkpoint
            // with files missing under its final name
            let (path, hidden) = (root.join(&name), root.join(format!(".{name}.old")));
            std::fs::rename(&path, &hidden).map_err(|e| Error::io("cannot remove", &path, e))?;
            remove(&hidden)?;
        }
    }
    remove_leftovers_in(root)
}

/// Remove what interrupted checkpoint writes and removals left in `output/checkpoints/`. A run
/// resumed after its last epoch writes no checkpoint (whose [`save`] would do it), so a resume
/// does it first.
pub fn remove_leftovers(output: &Path) -> Result<()> {
    let root = output.join(CHECKPOINTS);
    // without a checkpoints folder nothing was written, so nothing was left behind
    if root.is_dir() {
        remove_leftovers_in(&root)
    } else {
        Ok(())
    }
}

/// Remove the hidden `.tmp` and `.old` folders in `root`.
fn remove_leftovers_in(root: &Path) -> Result<()> {
    for name in entry_names(root)? {
        if name.starts_with('.') && (name.ends_with(".tmp") || name.ends_with(".old")) {
            remove(&root.join(name))?;
        }
    }
    Ok(())
}

fn remove(path: &Path) -> Result<()> {
    std::fs::remove_dir_all(path).map_err(|e| Error::io("cannot remove", path, e))
}

/// Read a checkpoint: a checkpoint folder itself, or the latest one of an output folder.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let dir = if path.join(STATE).is_file() {
        path.to_path_buf()
    } else {
        let root = path.join(CHECKPOINTS);
        let latest = root.is_dir().then(|| complete(&root)).transpose()?;
        match latest.and_then(|names| names.last().cloned()) {
            Some(name) => root.join(name),
            None => {
                return Err(Error::data(
                    path,
                    format!("no checkpoint to resume from (no {CHECKPOINTS}/epoch-* folder)"),
                ));
            }
        }
    };
    let state_path = dir.join(STATE);
    let text = std::fs::read_to_string(&state_path)
        .map_err(|e| Error::io("cannot read checkpoint", &state_path, e))?;
    let state: State = serde_json::from_str(&text)
        .map_err(|e| Error::data(&state_path, format!("not a clrtrain checkpoint: {e}")))?;
    let config = Config::from_file(&dir.join(CONFIG))?;
    Ok(Checkpoint { dir, config, state })
}

impl Checkpoint {
    /// The output folder the checkpoint belongs to.
    pub fn output_dir(&self) -> PathBuf {
        self.dir
            .parent()
            .and_then(Path::parent)
            .map_or_else(|| self.dir.clone(), Path::to_path_buf)
    }

    /// Put the weights, optimiser state, scheduler position, history and position in the run
    /// back into `state`; returns the model's info (classes, mean image) so the caller can check
    /// the data is the run's.
    pub fn restore(&self, state: &mut TrainState) -> Result<ModelInfo> {
        let info = state.trainer.load(&self.dir)?;
        let path = self.dir.join(SCHEDULER);
        let record = LrSchedulerRecord::load(&path).map_err(|e| Error::model(&path, e))?;
        let scheduler = &mut state.scheduler;
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
        state.history = self.state.history.clone();
        state.position = self.state.position.clone();
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EpochRecord;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn history(val_accuracies: &[f64]) -> History {
        let epochs = val_accuracies
            .iter()
            .enumerate()
            .map(|(i, &val_accuracy)| EpochRecord {
                epoch: i + 1,
                train_loss: 1.0,
                train_accuracy: 0.5,
                val_loss: 1.0,
                val_accuracy,
                seconds: 1.0,
            })
            .collect();
        History {
            epochs,
            ..History::default()
        }
    }

    #[test]
    fn names_sort_in_training_order() {
        let at = |epochs_done, batches_done| {
            name(&Position {
                epochs_done,
                batches_done,
                ..Position::default()
            })
        };
        let mut list = vec![at(10, 0), at(2, 7), at(2, 0), at(3, 0), at(2, 12)];
        list.sort();
        assert_eq!(list, [at(2, 0), at(2, 7), at(2, 12), at(3, 0), at(10, 0)]);
        assert_eq!(at(3, 12), "epoch-0003-batch-00012");
    }

    #[test]
    fn keeps_the_last_k_and_the_best() {
        let all = names(&[
            "epoch-0001",
            "epoch-0002",
            "epoch-0003",
            "epoch-0004",
            "epoch-0005",
        ]);
        let h = history(&[0.3, 0.6, 0.5, 0.55, 0.4]);
        assert_eq!(best_epoch(&h), Some(2));
        assert_eq!(
            kept(&all, 2, best_epoch(&h)),
            names(&["epoch-0002", "epoch-0004", "epoch-0005"])
        );
        // the best among the last: no extra one
        assert_eq!(kept(&all, 4, Some(3)), all[1..].to_vec());
        // ties keep the first best
        assert_eq!(best_epoch(&history(&[0.5, 0.5])), Some(1));
        assert_eq!(kept(&all, 1, None), names(&["epoch-0005"]));
    }
}
