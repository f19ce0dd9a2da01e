//! [`Sample`] (one training example) and [`Batch`] (samples stacked along a new batch axis).

use candle_core::{Device, Tensor};

use crate::error::{invalid, Result};

/// One training example.
///
/// * `image`: `(C, spatial..)` `f32`.
/// * `target`: for segmentation an `i64` label image `(spatial..)` holding the missing value
///   (default −1) where unlabelled; for regression or inpainting an `f32` `(C_out, spatial..)`.
/// * `mask`: optional `f32` `(1 or C_out, spatial..)`, 1 where a regression loss counts.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The input image, `(C, spatial..)`.
    pub image: Tensor,
    /// The target, if any (see the type's documentation).
    pub target: Option<Tensor>,
    /// Where a regression loss counts, if restricted.
    pub mask: Option<Tensor>,
}

impl Sample {
    /// A sample with only an image.
    pub fn image_only(image: Tensor) -> Self {
        Self {
            image,
            target: None,
            mask: None,
        }
    }
}

/// Samples stacked along a new leading batch axis.
///
/// * `image`: `(N, C, spatial..)`;
/// * `target`: `(N, spatial..)` `i64` or `(N, C_out, spatial..)` `f32`;
/// * `mask`: `(N, 1 or C_out, spatial..)`.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The stacked images.
    pub image: Tensor,
    /// The stacked targets, if the samples have them.
    pub target: Option<Tensor>,
    /// The stacked masks, if the samples have them.
    pub mask: Option<Tensor>,
}

impl Batch {
    /// Number of samples in the batch.
    pub fn len(&self) -> usize {
        self.image.dims().first().copied().unwrap_or(0)
    }

    /// Whether the batch is empty (never true for batches built by [`Batch::collate`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves every tensor to `device`.
    pub fn to_device(&self, device: &Device) -> Result<Batch> {
        Ok(Batch {
            image: self.image.to_device(device)?,
            target: self
                .target
                .as_ref()
                .map(|t| t.to_device(device))
                .transpose()?,
            mask: self
                .mask
                .as_ref()
                .map(|t| t.to_device(device))
                .transpose()?,
        })
    }

    /// Stacks samples into a batch. All images must share one shape, and likewise targets and
    /// masks; either every sample has a target (mask) or none has.
    pub fn collate(samples: &[Sample]) -> Result<Batch> {
        let first = samples
            .first()
            .ok_or_else(|| invalid("Batch::collate", "no samples to stack"))?;
        let images: Vec<&Tensor> = samples.iter().map(|s| &s.image).collect();
        let image = stack_checked("image", &images)?;
        let target = stack_optional(
            "target",
            samples.iter().map(|s| s.target.as_ref()),
            first.target.is_some(),
        )?;
        let mask = stack_optional(
            "mask",
            samples.iter().map(|s| s.mask.as_ref()),
            first.mask.is_some(),
        )?;
        Ok(Batch {
            image,
            target,
            mask,
        })
    }
}

fn stack_checked(what: &str, ts: &[&Tensor]) -> Result<Tensor> {
    let s0 = ts[0].dims();
    let d0 = ts[0].dtype();
    for (i, t) in ts.iter().enumerate() {
        if t.dims() != s0 || t.dtype() != d0 {
            return Err(invalid(
                "Batch::collate",
                format!(
                    "sample {i}'s {what} is {:?} {:?} but sample 0's is {s0:?} {d0:?}; crop or pad samples to one size",
                    t.dims(),
                    t.dtype()
                ),
            ));
        }
    }
    Ok(Tensor::stack(ts, 0)?)
}

fn stack_optional<'a>(
    what: &str,
    items: impl Iterator<Item = Option<&'a Tensor>>,
    expected: bool,
) -> Result<Option<Tensor>> {
    let mut ts = Vec::new();
    for (i, t) in items.enumerate() {
        match (t, expected) {
            (Some(t), true) => ts.push(t),
            (None, false) => {}
            _ => {
                return Err(invalid(
                    "Batch::collate",
                    format!("sample {i} differs from sample 0 in having a {what}"),
                ))
            }
        }
    }
    if expected {
        Ok(Some(stack_checked(what, &ts)?))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    #[test]
    fn collate_stacks_and_checks() {
        let dev = Device::Cpu;
        let s = |v: f32| Sample {
            image: Tensor::full(v, (1, 2, 2), &dev).unwrap(),
            target: Some(Tensor::zeros((2, 2), DType::I64, &dev).unwrap()),
            mask: None,
        };
        let b = Batch::collate(&[s(1.0), s(2.0)]).unwrap();
        assert_eq!(b.image.dims(), &[2, 1, 2, 2]);
        assert_eq!(b.target.as_ref().unwrap().dims(), &[2, 2, 2]);
        let v: Vec<f32> = b.image.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v, vec![1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);
        let mut bad = s(3.0);
        bad.target = None;
        assert!(Batch::collate(&[s(1.0), bad]).is_err());
        let mut odd = s(3.0);
        odd.image = Tensor::zeros((1, 3, 2), DType::F32, &dev).unwrap();
        assert!(Batch::collate(&[s(1.0), odd]).is_err());
        assert!(Batch::collate(&[]).is_err());
    }
}
