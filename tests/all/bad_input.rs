//! Bad input — configs, data, a diverging loss, output folders — answered with one clear
//! message naming the key, file or value, a non-zero exit code, never a panic, and nothing lost
//! that was already written.

use std::path::Path;

use crate::support::*;

fn tiny_folder(root: &Path) {
    write_image_folder(root, &synthetic_set(2, 4, 5), &synthetic_set(2, 2, 6));
}

#[test]
fn bad_configs_name_the_key_or_value() {
    let (_guard, tmp) = tempdir();
    let data = tmp.join("data");
    tiny_folder(&data);
    let config = tmp.join("bad.toml");
    let cases = [
        ("[training]\nepochz = 3\n", "epochz"),
        ("[schedule]\nmethod = \"cosine\"\n", "cosine"),
        (
            "[schedule]\nbase_lr = 0.1\nmax_lr = 0.01\n",
            "schedule.base_lr",
        ),
        ("[schedule]\nstep_size = 0\n", "schedule.step_size"),
        (
            "[training]\nbatch_size = 64\n",
            "training.batch_size = 64 is larger than the 8 training images",
        ),
        ("[training]\nbackend = \"tpu\"\n", "tpu"),
        ("this is not toml", "bad.toml"),
    ];
    for (text, needle) in cases {
        std::fs::write(&config, text).unwrap();
        // the file's backend must be read: no --backend default here
        let out = Clrtrain::train(&data, &tmp.join("o"))
            .flag("--config", &config)
            .arg("--no-download")
            .without("--backend")
            .fails(needle);
        assert_eq!(out.status.code(), Some(1));
    }
    Clrtrain::new("train")
        .flag("--config", tmp.join("missing.toml"))
        .fails("missing.toml");
    let usage = Clrtrain::new("train")
        .args(&["--method", "cosine"])
        .fails("cosine");
    assert_eq!(usage.status.code(), Some(2));
    Clrtrain::new("train")
        .args(&["--backend", "tpu"])
        .fails("tpu");
}

#[test]
fn bad_data_is_reported_with_the_file() {
    let (_guard, tmp) = tempdir();
    let out = tmp.join("out");
    // nothing there and no download
    Clrtrain::train(&tmp.join("none"), &out)
        .arg("--no-download")
        .fails("downloading is disabled");
    // nothing there and the download address does not answer
    Clrtrain::train(&tmp.join("none2"), &out)
        .flag("--data-url", "http://127.0.0.1:9/cifar.tar.gz")
        .fails("download failed");
    // truncated batch file
    let cifar = tmp.join("cifar/cifar-10-batches-bin");
    write_cifar_batches(&cifar, &synthetic_set(2, 5, 1), &synthetic_set(2, 2, 2));
    let bytes = std::fs::read(cifar.join("data_batch_3.bin")).unwrap();
    std::fs::write(cifar.join("data_batch_3.bin"), &bytes[..bytes.len() - 100]).unwrap();
    Clrtrain::train(&tmp.join("cifar"), &out).fails("data_batch_3.bin");
    // an image that does not decode
    let folder = tmp.join("folder");
    tiny_folder(&folder);
    std::fs::write(folder.join("test/class1/broken.jpg"), b"not a jpeg").unwrap();
    Clrtrain::train(&folder, &out).fails("broken.jpg");
    // an output folder that cannot be created (its parent is a file)
    std::fs::remove_file(folder.join("test/class1/broken.jpg")).unwrap();
    let file = tmp.join("file");
    std::fs::write(&file, "x").unwrap();
    Clrtrain::train(&folder, &file.join("out")).fails("cannot create output folder");
}

#[test]
fn a_diverging_loss_stops_with_a_message_and_keeps_what_was_written() {
    let (_guard, tmp) = tempdir();
    let data = tmp.join("data");
    write_image_folder(&data, &synthetic_set(2, 16, 7), &synthetic_set(2, 2, 8));
    let out = tmp.join("out");
    Clrtrain::train(&data, &out)
        .args(&["--epochs", "3", "--batch-size", "8", "--step-size", "1"])
        .args(&["--base-lr", "1e6", "--max-lr", "1e8"])
        .fails("training diverged");
    assert!(out.join("config.toml").is_file());
    let lrs = csv_rows(&out.join("lr.csv"));
    assert!(!lrs.is_empty());
    assert!(
        std::fs::read_to_string(out.join("history.csv"))
            .unwrap()
            .starts_with("epoch,")
    );
}
