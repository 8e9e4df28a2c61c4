//! What the tests share: tiny datasets they write themselves (learnable: each class has its own
//! colour), in both on-disk formats; a builder for `clrtrain` command lines with test defaults;
//! temporary folders; reading the CSV files a run writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use clrtrain::data::{ImageSet, cifar};

/// Class colours: far apart, so a few steps can separate them.
const PALETTE: [[u8; 3]; 10] = [
    [220, 30, 30],
    [30, 200, 40],
    [40, 60, 220],
    [230, 220, 40],
    [200, 40, 200],
    [40, 210, 210],
    [250, 140, 20],
    [120, 120, 120],
    [20, 20, 20],
    [240, 240, 240],
];

/// `per_class` 32×32 images of each of `classes` classes: class colour plus seeded noise.
pub fn synthetic_set(classes: usize, per_class: usize, seed: u64) -> ImageSet {
    let names = (0..classes).map(|c| format!("class{c}")).collect();
    let mut set = ImageSet::empty(names);
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % 61) as i32 - 30
    };
    for _ in 0..per_class {
        for (c, colour) in PALETTE.iter().enumerate().take(classes) {
            let pixels: Vec<u8> = (0..32 * 32 * 3)
                .map(|k| (colour[k % 3] as i32 + noise()).clamp(0, 255) as u8)
                .collect();
            set.push(&pixels, c as u32);
        }
    }
    set
}

/// `dir/data/`: an image folder of `classes` classes, `train` and `test` images per class, the
/// test images seeded apart from the training ones.
pub fn data_folder(dir: &Path, classes: usize, train: usize, test: usize, seed: u64) -> PathBuf {
    let root = dir.join("data");
    let (train, test) = (
        synthetic_set(classes, train, seed),
        synthetic_set(classes, test, seed + 1),
    );
    write_image_folder(&root, &train, &test);
    root
}

/// `root/{train,test}/<class>/NNNN.png`.
pub fn write_image_folder(root: &Path, train: &ImageSet, test: &ImageSet) {
    for (split, set) in [("train", train), ("test", test)] {
        for i in 0..set.len() {
            let class = &set.classes[set.labels[i] as usize];
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            let img = image::RgbImage::from_raw(32, 32, set.image(i).to_vec()).unwrap();
            img.save(dir.join(format!("{i:04}.png"))).unwrap();
        }
    }
}

/// `dir/` with `data_batch_1..5.bin`, `test_batch.bin` and `batches.meta.txt`. The training
/// images are spread over the five batch files.
pub fn write_cifar_batches(dir: &Path, train: &ImageSet, test: &ImageSet) {
    std::fs::create_dir_all(dir).unwrap();
    let records = cifar::encode_records(train);
    let per_file = train.len().div_ceil(5) * cifar::RECORD_LEN;
    for (k, file) in cifar::TRAIN_FILES.iter().enumerate() {
        let part =
            &records[(k * per_file).min(records.len())..((k + 1) * per_file).min(records.len())];
        std::fs::write(dir.join(file), part).unwrap();
    }
    std::fs::write(dir.join(cifar::TEST_FILE), cifar::encode_records(test)).unwrap();
    std::fs::write(dir.join(cifar::META_FILE), train.classes.join("\n") + "\n").unwrap();
}

/// A `cifar-10-binary.tar.gz` as the official one is laid out.
pub fn cifar_archive(train: &ImageSet, test: &ImageSet) -> Vec<u8> {
    let (staging, _) = tempdir();
    write_cifar_batches(&staging.path().join(cifar::DIR_NAME), train, test);
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(encoder);
    tar.append_dir_all(cifar::DIR_NAME, staging.path().join(cifar::DIR_NAME))
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

/// A `clrtrain` command line. The flags a test gives come first; then, for each default of the
/// subcommand the test did not give, the default: the CPU backend (`--backend flex`) and a fixed
/// seed (`--seed 1`, left out on `--resume`, which keeps the run's own).
pub struct Clrtrain {
    args: Vec<String>,
    /// Defaults not to add.
    without: Vec<&'static str>,
}

impl Clrtrain {
    /// `clrtrain SUBCOMMAND`.
    pub fn new(subcommand: &str) -> Self {
        Self {
            args: vec![subcommand.to_string()],
            without: Vec::new(),
        }
    }

    /// Leave out the default for `flag` (to let a config file's value count).
    pub fn without(mut self, flag: &'static str) -> Self {
        self.without.push(flag);
        self
    }

    /// `clrtrain train --data DATA --output OUT`.
    pub fn train(data: &Path, out: &Path) -> Self {
        Self::new("train")
            .flag("--data", data)
            .flag("--output", out)
    }

    /// One more argument.
    pub fn arg(mut self, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.args
            .push(value.as_ref().to_string_lossy().into_owned());
        self
    }

    /// `NAME VALUE`.
    pub fn flag(self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.arg(name).arg(value)
    }

    /// Several `NAME VALUE` pairs (or lone flags) at once.
    pub fn args(mut self, values: &[&str]) -> Self {
        self.args.extend(values.iter().map(|v| v.to_string()));
        self
    }

    /// The whole command line, defaults included.
    pub fn command_line(&self) -> Vec<String> {
        let given = |flag: &str| self.args.iter().any(|a| a == flag);
        let defaults: &[(&str, &str)] = match self.args[0].as_str() {
            "train" | "find-lr" => &[("--backend", "flex"), ("--seed", "1")],
            "evaluate" | "predict" | "bench" => &[("--backend", "flex")],
            _ => &[],
        };
        let mut line = self.args.clone();
        for (flag, value) in defaults {
            let kept_by_resume = *flag == "--seed" && given("--resume");
            let left_out = self.without.contains(flag) || given("--help");
            if !given(flag) && !kept_by_resume && !left_out {
                line.extend([flag.to_string(), value.to_string()]);
            }
        }
        line
    }

    /// Run it.
    pub fn run(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_clrtrain"))
            .args(self.command_line())
            .output()
            .expect("run clrtrain")
    }

    /// Run it; it must succeed (its output is shown if it does not).
    pub fn ok(&self) -> Output {
        let out = self.run();
        assert!(
            out.status.success(),
            "clrtrain {:?} failed\nstdout:\n{}\nstderr:\n{}",
            self.command_line(),
            stdout(&out),
            stderr(&out)
        );
        out
    }

    /// Run it; it must fail with exit code 1 (2 for clap's usage errors) and a message holding
    /// `needle` on stderr, never a panic.
    pub fn fails(&self, needle: &str) -> Output {
        let out = self.run();
        let err = stderr(&out);
        let line = self.command_line();
        assert!(!out.status.success(), "{line:?} succeeded");
        assert!(
            err.contains(needle),
            "{line:?}: expected '{needle}' in:\n{err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{line:?} panicked:\n{err}"
        );
        out
    }
}

/// What a command printed on stdout.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a command printed on stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The rows of a CSV file, header skipped, split at commas.
pub fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

/// Path as a `&str` argument.
pub fn arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A temporary folder, removed when dropped. (A hand-made `tempfile::TempDir`: that crate as a
/// dev-dependency changes features of shared dependencies, so `cargo build` and `cargo test`
/// would each rebuild Burn.)
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh temporary folder that lives as long as the returned guard.
pub fn tempdir() -> (TempDir, PathBuf) {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "clrtrain-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let path = std::env::temp_dir().join(name);
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    (TempDir(path.clone()), path)
}
