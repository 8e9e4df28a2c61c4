//! `clrtrain compare`: the table against the runs' own files, the picture, a warning for runs
//! on other data, and folders that are not runs.

use std::path::Path;

use crate::outputs::CLASSES;
use crate::support::*;

/// `history.csv` rows of a run as numbers.
fn history(dir: &Path) -> Vec<Vec<f64>> {
    csv_rows(&dir.join("history.csv"))
        .iter()
        .map(|row| row.iter().map(|v| v.parse().unwrap()).collect())
        .collect()
}

#[test]
fn compare_tabulates_runs_from_their_own_files() {
    let (_guard, tmp) = tempdir();
    let data = data_folder(&tmp, CLASSES, 6, 2, 71);
    let train = |name: &str, method: &str, epochs: &str| {
        let dir = tmp.join(name);
        Clrtrain::train(&data, &dir)
            .args(&["--epochs", epochs, "--batch-size", "8", "--step-size", "1"])
            .args(&["--base-lr", "1e-4", "--max-lr", "2e-2", "--method", method])
            .arg("-q")
            .ok();
        dir
    };
    let tri = train("tri", "triangular", "3");
    let tri2 = train("tri2", "triangular2", "2");
    // an interrupted run: no report.json yet
    std::fs::remove_file(tri2.join("report.json")).unwrap();
    let out = tmp.join("cmp");
    let result = Clrtrain::new("compare")
        .arg(&tri)
        .arg(&tri2)
        .flag("--output", &out)
        .ok();
    let text = stdout(&result);
    assert!(!text.contains("warning"), "{text}");

    let rows = csv_rows(&out.join("comparison.csv"));
    assert_eq!(rows.len(), 2);
    let header = std::fs::read_to_string(out.join("comparison.csv")).unwrap();
    assert!(header.starts_with("run,method,base_lr,max_lr,step_size,step_unit,epochs_done,"));
    for (dir, method, epochs) in [(&tri, "triangular", 3), (&tri2, "triangular2", 2)] {
        let name = dir.file_name().unwrap().to_string_lossy();
        let row = rows.iter().find(|r| r[0] == name).unwrap();
        let h = history(dir);
        assert_eq!(row[1], method);
        assert_eq!(row[6], epochs.to_string());
        assert_eq!(h.len(), epochs);
        // best validation accuracy (the first epoch of equals) and its epoch
        let best = h.iter().map(|r| r[4]).fold(f64::NEG_INFINITY, f64::max);
        let best_epoch = h.iter().find(|r| r[4] == best).unwrap()[0];
        assert_eq!(row[7].parse::<f64>().unwrap(), best);
        assert_eq!(row[8].parse::<f64>().unwrap(), best_epoch);
        let last = h.last().unwrap();
        assert_eq!(row[9].parse::<f64>().unwrap(), last[4]);
        assert_eq!(row[10].parse::<f64>().unwrap(), last[1]);
        let total: f64 = h.iter().map(|r| r[5]).sum();
        assert!((row[13].parse::<f64>().unwrap() - total).abs() < 1e-3);
    }
    // macro F1 from the finished run's report; none for the run without one
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tri.join("report.json")).unwrap()).unwrap();
    let f1 = report["macro avg"]["f1-score"].as_f64().unwrap();
    let tri_row = rows.iter().find(|r| r[0] == "tri").unwrap();
    assert!((tri_row[11].parse::<f64>().unwrap() - f1).abs() < 1e-6);
    assert_eq!(rows.iter().find(|r| r[0] == "tri2").unwrap()[11], "");
    // best run first, in the file and on the terminal
    let best: Vec<f64> = rows.iter().map(|r| r[7].parse().unwrap()).collect();
    assert!(best[0] >= best[1], "{rows:?}");
    let first_line = text.lines().nth(1).unwrap();
    assert!(first_line.starts_with(&rows[0][0]), "{text}");
    assert_eq!(
        image::image_dimensions(out.join("comparison.png")).unwrap(),
        (1200, 950)
    );

    // a run on other data is compared, with a warning
    let other = tmp.join("other");
    Clrtrain::train(&data, &other)
        .args(&[
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--train-per-class",
            "4",
        ])
        .arg("-q")
        .ok();
    let warned = Clrtrain::new("compare")
        .arg(&tri)
        .arg(&other)
        .flag("--output", tmp.join("cmp2"))
        .ok();
    assert!(
        stdout(&warned).contains("warning: other was trained on"),
        "{}",
        stdout(&warned)
    );
    assert_eq!(csv_rows(&tmp.join("cmp2/comparison.csv")).len(), 2);
}

#[test]
fn folders_that_are_not_runs_are_named_and_nothing_is_written() {
    let (_guard, tmp) = tempdir();
    let data = data_folder(&tmp, 2, 4, 1, 81);
    let run = tmp.join("run");
    Clrtrain::train(&data, &run)
        .args(&["--epochs", "1", "--batch-size", "4", "-q"])
        .ok();
    let out = tmp.join("cmp");
    let compare = |other: &Path| {
        Clrtrain::new("compare")
            .arg(&run)
            .arg(other)
            .flag("--output", &out)
    };
    let failed = compare(&data).fails("not a clrtrain run folder (no config.toml");
    assert!(stderr(&failed).contains(&arg(&data)), "{}", stderr(&failed));
    assert_eq!(failed.status.code(), Some(1));
    assert!(!out.exists(), "nothing written");
    // a damaged history
    let broken = tmp.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::copy(run.join("config.toml"), broken.join("config.toml")).unwrap();
    std::fs::write(broken.join("history.csv"), "epoch,loss\n1,2\n").unwrap();
    compare(&broken).fails("history.csv: the first line is not");
    compare(&tmp.join("missing")).fails("no config.toml");
    assert!(!out.exists(), "nothing written");
    Clrtrain::new("compare").fails("RUN_DIR");
}
