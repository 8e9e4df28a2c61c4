//! `clrtrain find-lr`: the curve, the plot, a config that trains, the early stop, and no trace
//! left on a later `train`.

use std::path::Path;

use clrtrain::config::Config;

use crate::outputs::CLASSES;
use crate::support::*;

#[test]
fn find_lr_writes_curve_plot_and_a_config_that_trains() {
    let (_guard, tmp) = tempdir();
    let data = tmp.join("data");
    write_image_folder(
        &data,
        &synthetic_set(CLASSES, 8, 21),
        &synthetic_set(CLASSES, 2, 22),
    );
    let out = tmp.join("find");
    let tuned = tmp.join("tuned.toml");
    let result = Clrtrain::new("find-lr")
        .flag("--data", &data)
        .flag("--output", &out)
        .args(&["--batch-size", "8", "--iterations", "12"])
        .args(&["--start-lr", "1e-5", "--end-lr", "1", "--seed", "4"])
        .flag("--write-config", &tuned)
        .ok();
    let text = stdout(&result);
    assert!(
        text.contains("recommended: base_lr") && text.contains("valley"),
        "{text}"
    );

    let rows = csv_rows(&out.join("lr_find.csv"));
    assert!(!rows.is_empty() && rows.len() <= 12);
    let first_lr: f64 = rows[0][1].parse().unwrap();
    assert_eq!(first_lr, 1e-5);
    if rows.len() == 12 {
        assert!((rows[11][1].parse::<f64>().unwrap() - 1.0).abs() < 1e-9);
    }
    assert!(
        rows.iter()
            .all(|r| r.len() == 4 && r[3].parse::<f64>().unwrap().is_finite())
    );
    assert_eq!(
        image::image_dimensions(out.join("lr_find.png")).unwrap(),
        (900, 550)
    );
    assert!(
        !out.join("model.clrtrain").exists() && !out.join("checkpoints").exists(),
        "the range test keeps no weights"
    );

    // the written config carries the recommended bounds and trains
    let config = Config::from_file(&tuned).unwrap();
    assert!(config.schedule.base_lr < config.schedule.max_lr);
    assert!(
        text.contains(&format!("max_lr = {:.3e}", config.schedule.max_lr)),
        "{text}"
    );
    Clrtrain::new("train")
        .flag("--config", &tuned)
        .flag("--output", tmp.join("train"))
        .args(&["--epochs", "1", "--batch-size", "8", "--step-size", "1"])
        .ok();
    // flags of the sweep itself are checked before anything runs
    Clrtrain::new("find-lr")
        .flag("--data", &data)
        .flag("--output", tmp.join("bad"))
        .args(&["--start-lr", "1", "--end-lr", "1e-3"])
        .fails("invalid argument: --start-lr 1 must be positive and smaller than --end-lr");
}

#[test]
fn find_lr_stops_once_the_loss_diverges_and_leaves_no_trace_on_training() {
    let (_guard, tmp) = tempdir();
    let data = tmp.join("data");
    write_image_folder(&data, &synthetic_set(2, 16, 31), &synthetic_set(2, 2, 32));
    let out = tmp.join("run");
    let result = Clrtrain::new("find-lr")
        .flag("--data", &data)
        .flag("--output", &out)
        .args(&["--batch-size", "8", "--iterations", "40"])
        .args(&["--start-lr", "1", "--end-lr", "1e8"])
        .ok();
    assert!(
        stdout(&result).contains("stopped at iteration"),
        "{}",
        stdout(&result)
    );
    assert!(csv_rows(&out.join("lr_find.csv")).len() < 40);

    // training in the same folder afterwards equals training in a fresh one
    let train = |dir: &Path| {
        Clrtrain::train(&data, dir)
            .args(&["--epochs", "1", "--batch-size", "8", "--step-size", "1"])
            .args(&["--seed", "9"])
            .ok();
        csv_rows(&dir.join("history.csv"))
            .into_iter()
            .map(|row| row[..5].to_vec())
            .collect::<Vec<_>>()
    };
    assert_eq!(train(&out), train(&tmp.join("fresh")));
}
