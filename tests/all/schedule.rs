//! `clrtrain schedule`: a preview must equal what a training run used, and one-cycle must end
//! exactly at its minimum on the last iteration.

use crate::outputs::CLASSES;
use crate::support::*;

#[test]
fn schedule_preview_equals_what_training_used() {
    let (_guard, tmp) = tempdir();
    let data = tmp.join("data");
    write_image_folder(
        &data,
        &synthetic_set(CLASSES, 5, 41),
        &synthetic_set(CLASSES, 1, 42),
    );
    let flags = [
        "--epochs",
        "3",
        "--batch-size",
        "6",
        "--step-size",
        "1",
        "--base-lr",
        "1e-3",
        "--max-lr",
        "5e-2",
        "--method",
        "triangular2",
    ];
    let out = tmp.join("train");
    let trained = Clrtrain::train(&data, &out).args(&flags).ok();
    // 20 images / batch 6 = 3 iterations per epoch; 3 epochs end mid-cycle (cycle = 6)
    assert!(
        stdout(&trained).contains("warning: the run stops 3 iterations into cycle 2"),
        "{}",
        stdout(&trained)
    );

    let csv = tmp.join("preview.csv");
    let png = tmp.join("preview.png");
    let previewed = Clrtrain::new("schedule")
        .args(&["--train-size", "20"])
        .flag("--csv", &csv)
        .flag("--plot", &png)
        .args(&flags)
        .ok();
    let text = stdout(&previewed);
    assert!(
        text.contains("9 iterations: 1 full cycle(s) of 6 iterations") && text.contains("warning:"),
        "{text}"
    );

    let trained_lrs: Vec<String> = csv_rows(&out.join("lr.csv"))
        .into_iter()
        .map(|r| r[1].clone())
        .collect();
    let rows = csv_rows(&csv);
    let previewed_lrs: Vec<String> = rows.iter().map(|r| r[1].clone()).collect();
    assert_eq!(trained_lrs.len(), 9);
    assert_eq!(trained_lrs, previewed_lrs);
    assert!(rows.iter().all(|r| r[2] == "0.9"), "momentum column");
    assert_eq!(image::image_dimensions(&png).unwrap(), (900, 500));

    // a run that ends with its cycle gets no warning; a train size below one batch is an error
    let whole = Clrtrain::new("schedule")
        .args(&["--train-size", "20", "--batch-size", "6"])
        .args(&["--step-size", "1", "--epochs", "4"])
        .run();
    assert!(!stdout(&whole).contains("warning"), "{}", stdout(&whole));
    Clrtrain::new("schedule")
        .args(&["--train-size", "5", "--batch-size", "6"])
        .fails("gives no batch");
}

#[test]
fn one_cycle_preview_ends_exactly_at_the_minimum_on_the_last_iteration() {
    let (_guard, tmp) = tempdir();
    let csv = tmp.join("one_cycle.csv");
    let out = Clrtrain::new("schedule")
        .args(&["--method", "one_cycle", "--max-lr", "0.1"])
        .args(&["--train-size", "640", "--batch-size", "64", "--epochs", "5"])
        .flag("--csv", &csv)
        .ok();
    assert!(!stdout(&out).contains("warning"), "{}", stdout(&out));
    let lrs: Vec<f64> = csv_rows(&csv)
        .iter()
        .map(|r| r[1].parse().unwrap())
        .collect();
    assert_eq!(lrs.len(), 50);
    assert!((lrs[0] - 0.1 / 25.0).abs() < 1e-15);
    assert!(
        (lrs[14] - 0.1).abs() < 1e-12,
        "peak at 0.3 * 50 - 1 = 14: {}",
        lrs[14]
    );
    assert_eq!(lrs[49], 0.1 / 25.0 / 1e4);
    assert!(
        lrs.windows(2).skip(14).all(|w| w[1] <= w[0]),
        "annealing only goes down"
    );
}
