//! Library-level checks that need more than one module: training lowers the loss, and the
//! CIFAR-10 downloader against a local HTTP server.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

use burn::tensor::Device;
use clrtrain::config::DataConfig;
use clrtrain::data::{self, cifar, download, loader, mean::mean_image};
use clrtrain::train::Trainer;
use common::*;

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
    let loaded = data::load(&config(&tmp.join("data"), &server.url, &md5_of(&archive))).unwrap();
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
    let err = data::load(&config(&root, &server.url, &expected))
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
    let err = data::load(&cfg).unwrap_err().to_string();
    assert!(err.contains("download failed"), "{err}");
    assert_eq!(
        std::fs::metadata(root.join("cifar-10-binary.tar.gz.part"))
            .unwrap()
            .len(),
        cut as u64
    );
    assert!(!root.join("cifar-10-binary.tar.gz").exists());
    let loaded = data::load(&cfg).unwrap();
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

/// Direct convolution by the definition: NCHW input, `[out, in, k, k]` kernel, zero padding.
fn naive_conv2d(
    x: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    kernel: &[f32],
    (out, k): (usize, usize),
    (stride, pad): (usize, usize),
) -> Vec<f32> {
    let (oh, ow) = (
        (h + 2 * pad - k) / stride + 1,
        (w + 2 * pad - k) / stride + 1,
    );
    let mut y = vec![0.0; n * out * oh * ow];
    for b in 0..n {
        for o in 0..out {
            for (i, j) in (0..oh).flat_map(|i| (0..ow).map(move |j| (i, j))) {
                let mut sum = 0.0;
                for ci in 0..c {
                    for (u, v) in (0..k).flat_map(|u| (0..k).map(move |v| (u, v))) {
                        let (yy, xx) = (
                            (i * stride + u) as isize - pad as isize,
                            (j * stride + v) as isize - pad as isize,
                        );
                        if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                            let xv = x[((b * c + ci) * h + yy as usize) * w + xx as usize];
                            sum += xv * kernel[((o * c + ci) * k + u) * k + v];
                        }
                    }
                }
                y[((b * out + o) * oh + i) * ow + j] = sum;
            }
        }
    }
    y
}

/// The CPU backend's convolutions (burn-flex, patched in vendor/) against the definition, in the
/// model's shapes: 3×3 same, 3×3 stride 2 valid, 1×1; several images so the per-image layout
/// copy is exercised.
#[test]
fn flex_convolutions_match_the_definition() {
    use burn::tensor::{Tensor, TensorData, module::conv2d, ops::ConvOptions};
    let device = Device::flex();
    let (n, c, h, w) = (3, 5, 9, 7);
    let value = |i: usize| ((i * 7919 % 263) as f32 / 263.0) - 0.5;
    let x: Vec<f32> = (0..n * c * h * w).map(value).collect();
    for (k, stride, pad) in [(3, 1, 1), (3, 2, 0), (1, 1, 0)] {
        let out = 4;
        let kernel: Vec<f32> = (0..out * c * k * k).map(|i| value(i + 101)).collect();
        let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), [n, c, h, w]), &device);
        let kt = Tensor::<4>::from_data(TensorData::new(kernel.clone(), [out, c, k, k]), &device);
        let options = ConvOptions::new([stride, stride], [pad, pad], [1, 1], 1);
        let got: Vec<f32> = conv2d(xt, kt, None, options)
            .into_data()
            .iter::<f32>()
            .collect();
        let want = naive_conv2d(&x, (n, c, h, w), &kernel, (out, k), (stride, pad));
        assert_eq!(got.len(), want.len());
        for (g, e) in got.iter().zip(&want) {
            assert!((g - e).abs() < 1e-4, "k {k} stride {stride}: {g} vs {e}");
        }
    }
}
