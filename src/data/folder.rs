//! Image folders: `ROOT/train/<class>/*` and `ROOT/test/<class>/*`, classes sorted by name,
//! files sorted by name. Any format the `image` crate decodes (PNG, JPEG, BMP, GIF). Images that
//! are not 32×32 are resized to 32×32 (bilinear), and greyscale or RGBA images become RGB.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use indicatif::ProgressBar;

use super::image_set::{INPUT_SIZE, ImageSet};
use crate::console::Console;
use crate::error::{Error, Result};

/// Load both splits, keeping at most `(train, test)` images per class. Classes come from
/// `train/`; `test/` may hold a subset of them.
pub fn load(
    root: &Path,
    (train_per_class, test_per_class): (Option<usize>, Option<usize>),
    console: Console,
) -> Result<(ImageSet, ImageSet)> {
    let train_dir = root.join("train");
    let classes = sorted_entries(&train_dir, true)?
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect::<Vec<_>>();
    if classes.is_empty() {
        return Err(Error::data(&train_dir, "no class folders found"));
    }
    let train = load_split(&train_dir, &classes, train_per_class, console)?;
    let test_dir = root.join("test");
    check_classes(&test_dir, &classes, "the training classes")?;
    let test = load_split(&test_dir, &classes, test_per_class, console)?;
    Ok((train, test))
}

/// Load `root/test/<class>/*` for the given classes (a model's), in their order.
pub fn load_test(
    root: &Path,
    classes: &[String],
    per_class: Option<usize>,
    console: Console,
) -> Result<ImageSet> {
    let test_dir = root.join("test");
    check_classes(&test_dir, classes, "the model's classes")?;
    load_split(&test_dir, classes, per_class, console)
}

/// Every class folder of `dir` must be one of `classes` (`whose`, for the message).
fn check_classes(dir: &Path, classes: &[String], whose: &str) -> Result<()> {
    for sub in sorted_entries(dir, true)? {
        let name = sub
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        if !classes.contains(&name) {
            return Err(Error::data(
                &sub,
                format!("class '{name}' is not among {whose}"),
            ));
        }
    }
    Ok(())
}

/// Load `dir/<class>/*` for each class (missing class folders hold no images).
fn load_split(
    dir: &Path,
    classes: &[String],
    per_class: Option<usize>,
    console: Console,
) -> Result<ImageSet> {
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        if !class_dir.is_dir() {
            continue;
        }
        let mut entries = sorted_entries(&class_dir, false)?;
        entries.truncate(per_class.unwrap_or(usize::MAX));
        files.extend(entries.into_iter().map(|p| (p, label as u32)));
    }
    let bar = console.bar(
        files.len() as u64,
        "loading {msg} {bar:30} {pos}/{len} images",
    );
    bar.set_message(dir.display().to_string());
    let images = decode_all(&files, &bar)?;
    bar.finish_and_clear();
    let mut set = ImageSet::empty(classes.to_vec());
    set.pixels.reserve(files.len() * set.image_len());
    for (pixels, (_, label)) in images.iter().zip(&files) {
        set.push(pixels, *label);
    }
    Ok(set)
}

/// Decode on all cores, keeping the order of `files`.
fn decode_all(files: &[(PathBuf, u32)], bar: &ProgressBar) -> Result<Vec<Vec<u8>>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(path, _)| {
                            let image = decode(path);
                            bar.inc(1);
                            image
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(files.len());
        for worker in workers {
            let part = worker
                .join()
                .map_err(|_| Error::data("image folder", "an image decoder thread failed"))??;
            all.extend(part);
        }
        Ok(all)
    })
}

/// One image as 32×32 RGB bytes.
pub fn decode(path: &Path) -> Result<Vec<u8>> {
    let image =
        image::open(path).map_err(|e| Error::data(path, format!("cannot decode image: {e}")))?;
    let size = INPUT_SIZE as u32;
    let rgb = if image.width() == size && image.height() == size {
        image.to_rgb8()
    } else {
        image::imageops::resize(&image.to_rgb8(), size, size, FilterType::Triangle)
    };
    Ok(rgb.into_raw())
}

/// Sub-folders (`dirs`) or files of `dir`, sorted by name, hidden entries skipped.
fn sorted_entries(dir: &Path, dirs: bool) -> Result<Vec<PathBuf>> {
    let read = std::fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?;
    let mut out = Vec::new();
    for entry in read {
        let path = entry.map_err(|e| Error::io("cannot list", dir, e))?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !hidden && path.is_dir() == dirs {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}
