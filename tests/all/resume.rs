//! `train --resume`: a run stopped after 2 epochs and resumed must equal an uninterrupted one,
//! and what would change the run is refused.

use std::path::Path;

use crate::outputs::CLASSES;
use crate::support::*;

#[test]
fn a_resumed_run_continues_exactly_where_the_checkpoint_left_off() {
    let (_guard, tmp) = tempdir();
    let data = data_folder(&tmp, CLASSES, 4, 1, 51);
    let run = |out: &Path, epochs: &str| {
        Clrtrain::train(&data, out)
            .args(&["--epochs", epochs, "--batch-size", "5", "--step-size", "2"])
            .args(&["--method", "triangular2", "--cycle-momentum", "--seed", "8"])
            .ok();
    };
    let resume = |out: &Path| Clrtrain::new("train").flag("--resume", out);
    // uninterrupted: 4 epochs of 3 iterations
    let whole = tmp.join("whole");
    run(&whole, "4");
    // interrupted after epoch 2 (iteration 6), resumed for 2 more
    let parts = tmp.join("parts");
    run(&parts, "2");
    assert!(parts.join("checkpoints/epoch-0002/state.json").is_file());
    let resumed = resume(&parts).args(&["--epochs", "4"]).ok();
    assert!(
        stdout(&resumed).contains("resuming after epoch 2 (iteration 6)"),
        "{}",
        stdout(&resumed)
    );

    // identical learning rates and momenta, iteration by iteration
    let lrs = |dir: &Path| csv_rows(&dir.join("lr.csv"));
    assert_eq!(lrs(&whole).len(), 12);
    assert_eq!(lrs(&parts), lrs(&whole));
    // and the same training: weights, momentum buffers and data order came back
    let metrics = |dir: &Path| -> Vec<Vec<String>> {
        csv_rows(&dir.join("history.csv"))
            .into_iter()
            .map(|r| r[..5].to_vec())
            .collect()
    };
    assert_eq!(metrics(&parts), metrics(&whole));
    assert_eq!(
        std::fs::read_to_string(parts.join("predictions.csv")).unwrap(),
        std::fs::read_to_string(whole.join("predictions.csv")).unwrap()
    );

    // flags that would change the run are refused; so is a folder without a checkpoint
    resume(&parts)
        .args(&["--max-lr", "0.5"])
        .fails("--max-lr cannot change on --resume");
    resume(&tmp.join("nothing")).fails("no checkpoint to resume from");
    resume(&parts)
        .args(&["--epochs", "3"])
        .fails("the run is already past training.epochs = 3 (4 epochs done)");
    // another dataset (here: fewer images, so another mean image) is refused
    resume(&parts)
        .args(&["--train-per-class", "2"])
        .fails("--train-per-class cannot change on --resume");
    let other = tmp.join("other");
    write_image_folder(
        &other,
        &synthetic_set(CLASSES, 4, 99),
        &synthetic_set(CLASSES, 1, 52),
    );
    resume(&parts)
        .flag("--data", &other)
        .args(&["--epochs", "5"])
        .fails("is not the one the checkpoint was trained on");
    // resuming a finished run only rewrites its results, identically, and removes what a
    // process killed inside a checkpoint write or removal left (it writes no checkpoint to do
    // that on the way)
    let leftovers = [".epoch-0001.old", ".epoch-0002-batch-00001.tmp"];
    for name in leftovers {
        std::fs::create_dir_all(parts.join("checkpoints").join(name).join("inner")).unwrap();
    }
    resume(&parts).ok();
    for name in leftovers {
        assert!(
            !parts.join("checkpoints").join(name).exists(),
            "{name} left"
        );
    }
    assert!(parts.join("checkpoints/epoch-0004").is_dir());
    assert_eq!(
        std::fs::read_to_string(parts.join("predictions.csv")).unwrap(),
        std::fs::read_to_string(whole.join("predictions.csv")).unwrap()
    );
}
