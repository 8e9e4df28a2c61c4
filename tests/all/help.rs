//! `--help` explains every flag of every subcommand.

use crate::support::*;

fn assert_flags_explained(command: &str, flags: &[&str]) {
    let out = Clrtrain::new(command).arg("--help").run();
    assert!(out.status.success());
    let help = stdout(&out);
    for flag in flags {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(flag) || l.contains(&format!(" {flag} ")));
        assert!(
            line.is_some_and(|l| l.len() > flag.len() + 20),
            "{command} {flag} is not explained:\n{help}"
        );
    }
}

#[test]
fn help_explains_every_flag() {
    let common = [
        "--config",
        "--backend",
        "--batch-size",
        "--data",
        "--output",
        "--seed",
        "--train-per-class",
        "--test-per-class",
        "--data-url",
        "--no-download",
        "--quiet",
    ];
    let train = [
        "--method",
        "--epochs",
        "--base-lr",
        "--max-lr",
        "--step-size",
        "--step-size-down",
        "--gamma",
        "--cycle-momentum",
    ];
    assert_flags_explained("train", &[&common[..], &train[..]].concat());
    let find_lr = [
        "--start-lr",
        "--end-lr",
        "--iterations",
        "--mode",
        "--beta",
        "--stop-factor",
        "--write-config",
    ];
    assert_flags_explained("find-lr", &[&common[..], &find_lr[..]].concat());
    let preview = [
        "--config",
        "--batch-size",
        "--train-size",
        "--iterations",
        "--csv",
        "--plot",
    ];
    assert_flags_explained("schedule", &[&train[..], &preview[..]].concat());
    assert_flags_explained("train", &["--resume"]);
    let evaluate = [
        "--model",
        "--data",
        "--test-per-class",
        "--backend",
        "--batch-size",
        "--output",
        "--no-download",
        "--quiet",
    ];
    assert_flags_explained("evaluate", &evaluate);
    assert_flags_explained("predict", &["--model", "--top-k", "--json", "--backend"]);
    let bench = [
        "--backend",
        "--batch-size",
        "--steps",
        "--warmup",
        "--eval-batch-size",
        "--json",
        "--quiet",
    ];
    assert_flags_explained("bench", &bench);
    assert_flags_explained("compare", &["--output", "--quiet"]);
}
