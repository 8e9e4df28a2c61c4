//! Interrupted runs. SIGKILL at random points — and while a checkpoint is being written — then
//! `--resume` until the run completes; the same with SIGINT (Ctrl-C), which checkpoints
//! mid-epoch. Either way the finished run must equal an uninterrupted one: learning rates,
//! losses, predictions, a loadable model. And the same seed twice gives the same run.
//! Unix only: signals are sent with the `kill` command.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::outputs::CLASSES;
use crate::support::*;

/// A fresh run, or a resume of `out` once it holds a checkpoint.
fn start(data: &Path, out: &Path) -> Child {
    let resumable = std::fs::read_dir(out.join("checkpoints")).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with("epoch-"))
    });
    let command = if resumable {
        Clrtrain::new("train").flag("--resume", out)
    } else {
        Clrtrain::train(data, out)
            .args(&["--epochs", "5", "--batch-size", "4", "--step-size", "1"])
            .args(&[
                "--method",
                "triangular2",
                "--cycle-momentum",
                "--seed",
                "21",
            ])
    };
    Command::new(env!("CARGO_BIN_EXE_clrtrain"))
        .args(command.command_line())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start clrtrain")
}

/// Run to completion, uninterrupted; returns how long it took.
fn run_whole(data: &Path, out: &Path) -> Duration {
    let started = Instant::now();
    let output = start(data, out).wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed()
}

/// A hidden `.epoch-*.tmp` folder: a checkpoint is being written.
fn writing_checkpoint(out: &Path) -> bool {
    std::fs::read_dir(out.join("checkpoints")).is_ok_and(|entries| {
        entries.filter_map(|e| e.ok()).any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(".epoch-") && name.ends_with(".tmp")
        })
    })
}

/// Seeded uniform numbers in [0, 1), so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Wait for `child` until `deadline` or until `stop(elapsed)` says to act; returns its status
/// if it ended by itself.
fn wait_until(child: &mut Child, mut act_now: impl FnMut() -> bool) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if act_now() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn send(signal: &str, child: &Child) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn rows(path: &Path, columns: usize) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(columns).collect::<Vec<_>>().join(","))
        .collect()
}

/// The finished run in `out` equals the uninterrupted one in `whole`.
fn assert_same_run(out: &Path, whole: &Path) {
    assert_eq!(rows(&out.join("lr.csv"), 3), rows(&whole.join("lr.csv"), 3));
    assert_eq!(rows(&out.join("lr.csv"), 3).len(), 21); // header + 5 epochs × 4 iterations
    // epoch, losses and accuracies (not the seconds)
    assert_eq!(
        rows(&out.join("history.csv"), 5),
        rows(&whole.join("history.csv"), 5)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("predictions.csv")).unwrap(),
        std::fs::read_to_string(whole.join("predictions.csv")).unwrap()
    );
    let model =
        clrtrain::saved_model::load(&out.join("model.clrtrain"), &burn::tensor::Device::flex());
    assert_eq!(model.unwrap().info.classes.len(), CLASSES);
    // nothing half-written left, and only the kept checkpoints (3 latest + the best)
    let names: Vec<String> = std::fs::read_dir(out.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.starts_with("epoch-")), "{names:?}");
    assert!((3..=4).contains(&names.len()), "{names:?}");
    assert!(names.contains(&"epoch-0005".to_string()), "{names:?}");
}

#[test]
fn interrupted_runs_resume_to_the_uninterrupted_result() {
    let (_guard, tmp) = tempdir();
    let data = data_folder(&tmp, CLASSES, 4, 1, 61);

    // determinism: the same seed on the same backend twice gives the same run
    let whole = tmp.join("whole");
    let took = run_whole(&data, &whole);
    let again = tmp.join("again");
    run_whole(&data, &again);
    assert_same_run(&again, &whole);

    // SIGKILL: at random times, and as soon as a checkpoint write has begun, alternately,
    // three times each; then the run may finish. A run that finishes before (the random times
    // are fractions of `took`, which other tests running alongside can stretch) must equal the
    // uninterrupted one too, and the kills go on in a fresh run.
    let killed = tmp.join("killed");
    let mut random = Lcg(0x5EED);
    let (mut random_kills, mut kills_in_writes, mut starts) = (0, 0, 0);
    let enough = |random_kills, kills_in_writes| random_kills >= 3 && kills_in_writes >= 3;
    loop {
        let mut child = start(&data, &killed);
        starts += 1;
        assert!(starts < 60, "the run never completed");
        let in_write = starts % 2 == 0;
        let ended = if enough(random_kills, kills_in_writes) {
            wait_until(&mut child, || false)
        } else if in_write {
            wait_until(&mut child, || writing_checkpoint(&killed))
        } else {
            let at = took.mul_f64(0.05 + 0.3 * random.next());
            let begun = Instant::now();
            wait_until(&mut child, || begun.elapsed() >= at)
        };
        if let Some(status) = ended {
            let stderr = child.wait_with_output().unwrap().stderr;
            assert!(status.success(), "{}", String::from_utf8_lossy(&stderr));
            assert_same_run(&killed, &whole);
            if enough(random_kills, kills_in_writes) {
                break;
            }
            std::fs::remove_dir_all(&killed).unwrap();
            continue;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if !in_write {
            random_kills += 1;
        } else if writing_checkpoint(&killed) {
            // the half-written checkpoint is still there: the kill came inside the write
            kills_in_writes += 1;
        }
    }
    eprintln!(
        "SIGKILL: {random_kills} at random times, {kills_in_writes} inside checkpoint writes, \
         {starts} starts"
    );

    // SIGINT: a checkpoint mid-epoch, a message saying how to resume, exit code 130
    let stopped = tmp.join("stopped");
    let (mut interrupts, mut starts) = (0, 0);
    loop {
        let mut child = start(&data, &stopped);
        starts += 1;
        assert!(starts < 20, "the run never completed");
        let at = took.mul_f64(0.15 + 0.5 * random.next());
        let begun = Instant::now();
        let ended = if starts > 4 {
            wait_until(&mut child, || false)
        } else {
            wait_until(&mut child, || begun.elapsed() >= at)
        };
        if ended.is_none() {
            send("-INT", &child);
            if starts == 4 {
                send("-INT", &child); // a second Ctrl-C exits at once
            }
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            break;
        }
        if output.status.code().is_none() {
            // a signal before the handlers were installed (a very slow start) ends the process
            // the default way; the run simply starts again
            assert_eq!(output.status.signal(), Some(2), "{stderr}");
            continue;
        }
        assert_eq!(output.status.code(), Some(130), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        if starts < 4 && stderr.contains("interrupted after iteration") {
            assert!(
                stderr.contains("resume with: clrtrain train --resume"),
                "{stderr}"
            );
            interrupts += 1;
        }
    }
    eprintln!("SIGINT: {interrupts} clean interruptions");
    assert!(interrupts >= 2);
    assert_same_run(&stopped, &whole);
}
