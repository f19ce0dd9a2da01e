//! The [`Dataset`] trait and its implementations: in memory ([`TensorDataset`]), on disk
//! ([`FileDataset`]), and a view on a subset of another dataset ([`Subset`]).

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use crate::error::{invalid, shape_err, Error, Result};
use crate::io::read_volume;
use crate::normalize::Normalization;
use crate::sample::Sample;

/// A random-access collection of training examples.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Sample `index` (`index < len()`, otherwise an error).
    fn get(&self, index: usize) -> Result<Sample>;
    /// Whether the dataset has no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        (**self).get(index)
    }
}

pub(crate) fn check_index(what: &'static str, index: usize, len: usize) -> Result<()> {
    if index < len {
        Ok(())
    } else {
        Err(invalid(
            what,
            format!("index {index} out of range for a dataset of {len} samples"),
        ))
    }
}

/// Checks that a target and a mask fit an image batch `(N, C, spatial..)`.
pub(crate) fn check_target_mask(
    what: &'static str,
    image: &[usize],
    target: Option<&Tensor>,
    mask: Option<&Tensor>,
) -> Result<()> {
    let (n, spatial) = (image[0], &image[2..]);
    if let Some(t) = target {
        let d = t.dims();
        let ok = match t.dtype() {
            DType::I64 | DType::U32 | DType::U8 => d.len() == image.len() - 1 && &d[1..] == spatial,
            _ => d.len() == image.len() && &d[2..] == spatial,
        } && d[0] == n;
        if !ok {
            return Err(shape_err(
                what,
                format!("a target of shape (N={n}, spatial {spatial:?}) for labels or (N={n}, C_out, spatial {spatial:?}) for regression, matching images {image:?}"),
                d,
            ));
        }
    }
    if let Some(m) = mask {
        let d = m.dims();
        if d.len() != image.len() || d[0] != n || &d[2..] != spatial {
            return Err(shape_err(
                what,
                format!("a mask of shape (N={n}, 1 or C_out, spatial {spatial:?})"),
                d,
            ));
        }
    }
    Ok(())
}

/// Images (and optional targets and masks) held in memory as tensors with a leading sample axis.
#[derive(Debug, Clone)]
pub struct TensorDataset {
    images: Tensor,
    targets: Option<Tensor>,
    masks: Option<Tensor>,
}

impl TensorDataset {
    /// Builds a dataset from `images` `(N, C, spatial..)`, optional `targets` (`(N, spatial..)`
    /// integer labels or `(N, C_out, spatial..)` floats) and optional `masks`
    /// `(N, 1 or C_out, spatial..)`. Shapes are checked here, once.
    pub fn new(images: Tensor, targets: Option<Tensor>, masks: Option<Tensor>) -> Result<Self> {
        let d = images.dims().to_vec();
        if d.len() < 3 {
            return Err(shape_err(
                "TensorDataset::new",
                "images of shape (N, C, spatial..) with at least one spatial axis",
                &d,
            ));
        }
        let images = images.to_dtype(DType::F32)?;
        let targets = match targets {
            Some(t) if matches!(t.dtype(), DType::U8 | DType::U32) => Some(t.to_dtype(DType::I64)?),
            Some(t) if t.dtype() != DType::I64 => Some(t.to_dtype(DType::F32)?),
            t => t,
        };
        let masks = masks.map(|m| m.to_dtype(DType::F32)).transpose()?;
        check_target_mask("TensorDataset::new", &d, targets.as_ref(), masks.as_ref())?;
        Ok(Self {
            images,
            targets,
            masks,
        })
    }

    /// The images, `(N, C, spatial..)`.
    pub fn images(&self) -> &Tensor {
        &self.images
    }

    /// The targets, if any.
    pub fn targets(&self) -> Option<&Tensor> {
        self.targets.as_ref()
    }

    /// The masks, if any.
    pub fn masks(&self) -> Option<&Tensor> {
        self.masks.as_ref()
    }
}

impl Dataset for TensorDataset {
    fn len(&self) -> usize {
        self.images.dims()[0]
    }

    fn get(&self, index: usize) -> Result<Sample> {
        check_index("TensorDataset::get", index, self.len())?;
        Ok(Sample {
            image: self.images.get(index)?,
            target: self.targets.as_ref().map(|t| t.get(index)).transpose()?,
            mask: self.masks.as_ref().map(|t| t.get(index)).transpose()?,
        })
    }
}

/// How [`FileDataset`] reads an image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelLayout {
    /// The file holds one channel: a `(H, W)` image or a `(D, H, W)` volume gets a channel axis
    /// of 1 in front.
    #[default]
    SingleChannel,
    /// The file's first axis is the channel axis: `(C, H, W)` or `(C, D, H, W)`.
    ChannelsFirst,
}

/// Image files (and optional label files) read from disk when a sample is requested.
///
/// Labels are integer images with the missing value (e.g. −1) where unlabelled, as napari saves
/// them; their shape must equal the image's spatial shape.
#[derive(Debug, Clone)]
pub struct FileDataset {
    images: Vec<PathBuf>,
    labels: Option<Vec<PathBuf>>,
    layout: ChannelLayout,
    normalization: Option<Normalization>,
}

impl FileDataset {
    /// A dataset of `images`, with one label file per image if `labels` is given.
    pub fn new(images: Vec<PathBuf>, labels: Option<Vec<PathBuf>>) -> Result<Self> {
        if let Some(l) = &labels {
            if l.len() != images.len() {
                return Err(invalid(
                    "FileDataset::new",
                    format!(
                        "{} image files but {} label files; give one label file per image",
                        images.len(),
                        l.len()
                    ),
                ));
            }
        }
        Ok(Self {
            images,
            labels,
            layout: ChannelLayout::default(),
            normalization: None,
        })
    }

    /// Sets how image files map to channels.
    pub fn with_layout(mut self, layout: ChannelLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Applies `norm` to every image when it is read.
    pub fn with_normalization(mut self, norm: Normalization) -> Self {
        self.normalization = Some(norm);
        self
    }
}

impl Dataset for FileDataset {
    fn len(&self) -> usize {
        self.images.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        check_index("FileDataset::get", index, self.len())?;
        let path = &self.images[index];
        let vol = read_volume(path)?;
        let mut shape = vol.shape().to_vec();
        if self.layout == ChannelLayout::SingleChannel {
            shape.insert(0, 1);
        }
        if shape.len() < 2 {
            return Err(crate::error::format_err(
                path,
                format!("{:?} has no spatial axis", vol.shape()),
            ));
        }
        let mut image = Tensor::from_vec(vol.to_f32_vec(), shape.as_slice(), &Device::Cpu)?;
        if let Some(n) = &self.normalization {
            image = n.apply(&image)?;
        }
        let target = match &self.labels {
            None => None,
            Some(l) => {
                let lv = read_volume(&l[index])?;
                if lv.shape() != &shape[1..] {
                    return Err(Error::Format {
                        path: l[index].clone(),
                        msg: format!(
                            "labels of shape {:?} do not match image {} of spatial shape {:?}",
                            lv.shape(),
                            path.display(),
                            &shape[1..]
                        ),
                    });
                }
                Some(
                    lv.to_label_tensor(&Device::Cpu)
                        .map_err(|e| Error::Format {
                            path: l[index].clone(),
                            msg: e.to_string(),
                        })?,
                )
            }
        };
        Ok(Sample {
            image,
            target,
            mask: None,
        })
    }
}

/// The samples of another dataset at the given indices, in that order.
#[derive(Debug, Clone)]
pub struct Subset<D> {
    inner: D,
    indices: Vec<usize>,
}

impl<D: Dataset> Subset<D> {
    /// A view on `inner` at `indices` (each must be in range).
    pub fn new(inner: D, indices: Vec<usize>) -> Result<Self> {
        for &i in &indices {
            check_index("Subset::new", i, inner.len())?;
        }
        Ok(Self { inner, indices })
    }

    /// The indices into the inner dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl<D: Dataset> Dataset for Subset<D> {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        check_index("Subset::get", index, self.len())?;
        self.inner.get(self.indices[index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_dataset_checks_shapes() {
        let dev = Device::Cpu;
        let img = Tensor::zeros((3, 1, 4, 5), DType::F32, &dev).unwrap();
        let lab = Tensor::zeros((3, 4, 5), DType::I64, &dev).unwrap();
        let ds = TensorDataset::new(img.clone(), Some(lab), None).unwrap();
        assert_eq!(ds.len(), 3);
        assert_eq!(ds.get(2).unwrap().image.dims(), &[1, 4, 5]);
        assert!(ds.get(3).is_err());
        let bad = Tensor::zeros((3, 5, 4), DType::I64, &dev).unwrap();
        assert!(TensorDataset::new(img.clone(), Some(bad), None).is_err());
        let reg = Tensor::zeros((3, 2, 4, 5), DType::F32, &dev).unwrap();
        let mask = Tensor::ones((3, 1, 4, 5), DType::F32, &dev).unwrap();
        assert!(TensorDataset::new(img.clone(), Some(reg), Some(mask)).is_ok());
        let wrong_n = Tensor::zeros((2, 4, 5), DType::I64, &dev).unwrap();
        assert!(TensorDataset::new(img, Some(wrong_n), None).is_err());
    }
}
