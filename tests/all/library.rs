//! Library-level checks that need more than one module: training lowers the loss, and the
//! CIFAR-10 downloader against a local HTTP server.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use burn::tensor::Device;
use clrtrain::console::Console;
use clrtrain::data::{self, DataConfig, cifar, download, loader, mean::mean_image};
use clrtrain::trainer::Trainer;

use crate::support::*;

#[test]
fn a_few_sgd_steps_lower_the_loss_on_a_fixed_batch() {
    let set = synthetic_set(4, 4, 11);
    let mean = mean_image(&set);
    let batch = loader::eval_batches(&set, &mean, 16).next().unwrap();
    // a constant learning rate of 0.01
    let mut trainer = Trainer::new(4, &Device::flex(), 5);
    let losses: Vec<f32> = (0..12)
        .map(|it| {
            trainer
                .step(batch.clone(), it, 0.01, 0.9)
                .loss
                .into_scalar::<f32>()
        })
        .collect();
    let first = (losses[0] + losses[1]) / 2.0;
    let last = (losses[10] + losses[11]) / 2.0;
    assert!(losses.iter().all(|l| l.is_finite()));
    assert!(last < 0.5 * first, "loss did not fall: {losses:?}");
}

/// A one-file HTTP server on 127.0.0.1 that honours `Range: bytes=N-`. With `cut_after`, the
/// first response stops after that many bytes although it announced the whole length.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

fn serve(body: Vec<u8>, cut_after: Option<usize>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/cifar-10-binary.tar.gz",
        listener.local_addr().unwrap()
    );
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    thread::spawn(move || {
        for (n, stream) in listener.incoming().take(8).enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut start = 0usize;
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(range) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    start = range.trim().trim_end_matches('-').parse().unwrap_or(0);
                }
                head += &line;
            }
            log.lock().unwrap().push(head);
            let rest = &body[start..];
            let status = if start > 0 {
                "206 Partial Content"
            } else {
                "200 OK"
            };
            let header = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                rest.len()
            );
            let _ = stream.write_all(header.as_bytes());
            let send = match cut_after {
                Some(cut) if n == 0 => &rest[..cut],
                _ => rest,
            };
            let _ = stream.write_all(send);
        }
    });
    Server { url, requests }
}

fn md5_of(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn config(root: &std::path::Path, url: &str, md5: &str) -> DataConfig {
    DataConfig {
        path: root.to_path_buf(),
        url: url.into(),
        md5: md5.into(),
        ..Default::default()
    }
}

#[test]
fn download_verifies_unpacks_and_loads() {
    let (train, test) = (synthetic_set(3, 5, 1), synthetic_set(3, 2, 2));
    let archive = cifar_archive(&train, &test);
    let server = serve(archive.clone(), None);
    let (_guard, tmp) = tempdir();
    let loaded = data::load(
        &config(&tmp.join("data"), &server.url, &md5_of(&archive)),
        Console::silent(),
    )
    .unwrap();
    assert_eq!(loaded.train.pixels, train.pixels);
    assert_eq!(loaded.test.labels, test.labels);
    assert_eq!(loaded.train.classes, train.classes);
    // the archive and the staging folder are gone, the batches are in place
    let names: Vec<String> = std::fs::read_dir(tmp.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![cifar::DIR_NAME.to_string()]);
}

#[test]
fn corrupt_download_is_rejected_and_leaves_nothing_under_a_final_name() {
    let archive = cifar_archive(&synthetic_set(2, 5, 1), &synthetic_set(2, 1, 2));
    let expected = md5_of(&archive);
    let mut corrupt = archive.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0xff;
    let server = serve(corrupt, None);
    let (_guard, tmp) = tempdir();
    let root = tmp.join("data");
    let err = data::load(&config(&root, &server.url, &expected), Console::silent())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("checksum mismatch") && err.contains(&expected),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    assert!(!cifar::is_present(&root));
}

#[test]
fn broken_download_resumes_with_a_range_request() {
    let archive = cifar_archive(&synthetic_set(2, 5, 3), &synthetic_set(2, 1, 4));
    let cut = archive.len() / 3;
    let server = serve(archive.clone(), Some(cut));
    let (_guard, tmp) = tempdir();
    let root = tmp.join("data");
    let cfg = config(&root, &server.url, &md5_of(&archive));
    let err = data::load(&cfg, Console::silent()).unwrap_err().to_string();
    assert!(err.contains("download failed"), "{err}");
    assert_eq!(
        std::fs::metadata(root.join("cifar-10-binary.tar.gz.part"))
            .unwrap()
            .len(),
        cut as u64
    );
    assert!(!root.join("cifar-10-binary.tar.gz").exists());
    let loaded = data::load(&cfg, Console::silent()).unwrap();
    assert_eq!(loaded.train.len(), 10);
    let requests = server.requests.lock().unwrap();
    assert!(
        requests[1]
            .to_ascii_lowercase()
            .contains(&format!("range: bytes={cut}-")),
        "{requests:?}"
    );
    assert_eq!(
        download::md5_hex(&root.join(cifar::DIR_NAME).join(cifar::TEST_FILE))
            .unwrap()
            .len(),
        32
    );
}
