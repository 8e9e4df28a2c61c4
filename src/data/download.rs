//! Download and unpack the CIFAR-10 binary archive.
//!
//! The archive streams into `NAME.part` (resumed with an HTTP range request when a previous
//! download broke off), its MD5 is checked against the published one, and only then is it
//! renamed and unpacked — into a temporary folder that is renamed into place last. A failed or
//! corrupt download therefore never leaves anything under a final name.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::cifar;
use crate::console::Console;
use crate::error::{Error, Result};

const ARCHIVE_NAME: &str = "cifar-10-binary.tar.gz";

/// Fetch `url` into `root`, verify `md5_hex`, unpack `cifar-10-batches-bin/` there.
pub fn download_cifar10(url: &str, md5_hex: &str, root: &Path, console: Console) -> Result<()> {
    std::fs::create_dir_all(root).map_err(|e| Error::io("cannot create", root, e))?;
    let archive = root.join(ARCHIVE_NAME);
    if !archive.is_file() {
        let part = root.join(format!("{ARCHIVE_NAME}.part"));
        console.say(&format!("downloading CIFAR-10 from {url}"));
        fetch(url, &part, console)?;
        verify_md5(&part, md5_hex)?;
        std::fs::rename(&part, &archive).map_err(|e| Error::io("cannot rename", &part, e))?;
    }
    unpack(&archive, root)?;
    std::fs::remove_file(&archive).map_err(|e| Error::io("cannot remove", &archive, e))
}

/// Stream `url` into `part`, appending to what is already there when the server allows.
fn fetch(url: &str, part: &Path, console: Console) -> Result<()> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut request = ureq::get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = request
        .call()
        .map_err(|e| Error::Download(format!("{url}: {e}")))?;
    let resumed = response.status().as_u16() == 206;
    let start = if resumed { have } else { 0 };
    let total = response.body().content_length().map(|n| n + start);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(part)
        .map_err(|e| Error::io("cannot write", part, e))?;
    let bar = console.bar(
        total.unwrap_or(0),
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    );
    bar.set_position(start);
    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| {
            Error::Download(format!(
                "{url}: connection broke off: {e} (run again to resume)"
            ))
        })?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])
            .map_err(|e| Error::io("cannot write", part, e))?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    file.sync_all()
        .map_err(|e| Error::io("cannot write", part, e))
}

/// Compare the file's MD5 with `expected`; a mismatch removes the file.
fn verify_md5(path: &Path, expected: &str) -> Result<()> {
    let actual = md5_hex(path)?;
    if actual.eq_ignore_ascii_case(expected.trim()) {
        return Ok(());
    }
    let _ = std::fs::remove_file(path);
    Err(Error::Download(format!(
        "checksum mismatch for {}: expected MD5 {expected}, got {actual}; the corrupt file was removed",
        path.display()
    )))
}

/// Hex MD5 of a file.
pub fn md5_hex(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    let mut hasher = Md5::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| Error::io("cannot read", path, e))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Unpack the archive into a temporary folder, then move `cifar-10-batches-bin` into `root`.
fn unpack(archive: &Path, root: &Path) -> Result<()> {
    let staging = root.join(".unpacking");
    let _ = std::fs::remove_dir_all(&staging);
    let file = File::open(archive).map_err(|e| Error::io("cannot read", archive, e))?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(&staging)
        .map_err(|e| Error::data(archive, format!("cannot unpack: {e}")))?;
    let unpacked: PathBuf = staging.join(cifar::DIR_NAME);
    if !unpacked.join(cifar::TEST_FILE).is_file() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(Error::data(
            archive,
            format!(
                "the archive holds no {}/{}",
                cifar::DIR_NAME,
                cifar::TEST_FILE
            ),
        ));
    }
    let target = root.join(cifar::DIR_NAME);
    std::fs::rename(&unpacked, &target)
        .map_err(|e| Error::io("cannot move into place", &target, e))?;
    std::fs::remove_dir_all(&staging).map_err(|e| Error::io("cannot remove", &staging, e))
}
