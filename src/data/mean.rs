//! Per-pixel mean image of a training set, subtracted from every train and test image (as the
//! reference does: no scaling to [0, 1], no division by a standard deviation).

use super::image_set::ImageSet;

/// Mean of every byte position over the set (H × W × C, HWC order), in pixel units (0–255).
pub fn mean_image(set: &ImageSet) -> Vec<f32> {
    let n = set.image_len();
    let mut sums = vec![0u64; n];
    for image in set.pixels.chunks_exact(n) {
        for (sum, &p) in sums.iter_mut().zip(image) {
            *sum += p as u64;
        }
    }
    let count = set.len().max(1) as f64;
    sums.into_iter()
        .map(|s| (s as f64 / count) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_is_per_pixel_and_per_channel() {
        let mut set = ImageSet::empty(vec!["x".into()]);
        set.height = 1;
        set.width = 2;
        // two images of 1x2 RGB pixels
        set.push(&[0, 10, 20, 255, 0, 1], 0);
        set.push(&[2, 10, 21, 255, 255, 2], 0);
        assert_eq!(mean_image(&set), vec![1.0, 10.0, 20.5, 255.0, 127.5, 1.5]);
    }
}
