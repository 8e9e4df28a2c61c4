//! Images of one split in memory, as bytes.

/// Side of the square images the model takes. Folder images of another size are resized to it.
pub const INPUT_SIZE: usize = 32;
/// Colour channels (RGB).
pub const CHANNELS: usize = 3;

/// Images of one split as bytes, height × width × channel per image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// Class names, index = label.
    pub classes: Vec<String>,
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// All images back to back, HWC order.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u32>,
}

impl ImageSet {
    /// An empty set of `INPUT_SIZE` RGB images.
    pub fn empty(classes: Vec<String>) -> Self {
        Self {
            classes,
            height: INPUT_SIZE,
            width: INPUT_SIZE,
            channels: CHANNELS,
            pixels: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// The bytes of image `i` (HWC).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Append one image.
    pub fn push(&mut self, pixels: &[u8], label: u32) {
        debug_assert_eq!(pixels.len(), self.image_len());
        self.pixels.extend_from_slice(pixels);
        self.labels.push(label);
    }

    /// The first `n` images of each class, in their original order.
    pub fn first_per_class(&self, n: usize) -> ImageSet {
        let mut kept = vec![0usize; self.classes.len()];
        let mut out = ImageSet {
            pixels: Vec::new(),
            labels: Vec::new(),
            ..self.clone_meta()
        };
        for i in 0..self.len() {
            let label = self.labels[i] as usize;
            if kept[label] < n {
                kept[label] += 1;
                out.push(self.image(i), self.labels[i]);
            }
        }
        out
    }

    /// Images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    fn clone_meta(&self) -> ImageSet {
        ImageSet {
            classes: self.classes.clone(),
            height: self.height,
            width: self.width,
            channels: self.channels,
            pixels: Vec::new(),
            labels: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_per_class_keeps_order_and_balance() {
        let mut set = ImageSet::empty(vec!["a".into(), "b".into()]);
        let img = vec![0u8; set.image_len()];
        for label in [0, 1, 0, 0, 1, 1, 1] {
            set.push(&img, label);
        }
        let sub = set.first_per_class(2);
        assert_eq!(sub.labels, vec![0, 1, 0, 1]);
        assert_eq!(sub.class_counts(), vec![2, 2]);
        assert_eq!(sub.pixels.len(), 4 * set.image_len());
    }
}
