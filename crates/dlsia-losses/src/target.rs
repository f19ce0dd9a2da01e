//! Turning the `(target, mask)` arguments of [`crate::Loss::loss`] into dense per-class targets
//! and weights, with the input checks every loss shares.

use candle_core::{DType, Tensor};

use crate::error::{invalid_value, shape_error, Result};

/// Dense targets and weights for a class-probability loss.
#[derive(Debug, Clone)]
pub(crate) struct ClassTargets {
    /// One-hot (from labels) or soft targets, `(N, C, spatial…)`, in the prediction's dtype.
    /// Unlabelled pixels are all-zero.
    pub y: Tensor,
    /// Non-negative weights, `(N, 1, spatial…)` or `(N, C, spatial…)`: 0 where a pixel is
    /// unlabelled, otherwise the mask value (1 without a mask).
    pub w: Tensor,
}

/// Checks that a prediction is a floating-point `(N, C, spatial…)` tensor.
pub(crate) fn check_prediction(what: &'static str, prediction: &Tensor) -> Result<()> {
    if prediction.rank() < 2 || prediction.elem_count() == 0 {
        return Err(shape_error(
            what,
            "a non-empty prediction (N, C, spatial…)",
            prediction.shape(),
        ));
    }
    if !prediction.dtype().is_float() {
        return Err(invalid_value(
            what,
            format!(
                "the prediction must be floating point, got {:?}",
                prediction.dtype()
            ),
        ));
    }
    Ok(())
}

/// Checks that probabilities lie in `[0, 1]` (NaN is rejected too).
pub(crate) fn check_probabilities(what: &'static str, p: &Tensor) -> Result<()> {
    let ok = (p.ge(0.0)? * p.le(1.0)?)?;
    if ok.min_all()?.to_scalar::<u8>()? == 0 {
        let lo = p.min_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let hi = p.max_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        return Err(invalid_value(
            what,
            format!(
                "probabilities must lie in [0, 1] (and not be NaN), found values in [{lo}, {hi}]; \
                 pass logits with `input = \"logits\"` if the network has no final activation"
            ),
        ));
    }
    Ok(())
}

/// The spatial shape of an `(N, C, spatial…)` tensor.
fn spatial(t: &Tensor) -> &[usize] {
    &t.dims()[2..]
}

/// A mask, converted to `dtype` and shaped `(N, 1 or C, spatial…)`; `(N, spatial…)` is accepted
/// and given a channel axis. Negative, infinite and NaN weights are rejected.
pub(crate) fn prepare_mask(
    what: &'static str,
    prediction: &Tensor,
    mask: &Tensor,
) -> Result<Tensor> {
    let (n, c) = (prediction.dim(0)?, prediction.dim(1)?);
    let sp = spatial(prediction);
    let dims = mask.dims();
    let mask = if dims.len() == sp.len() + 1 && dims[0] == n && &dims[1..] == sp {
        mask.unsqueeze(1)?
    } else if dims.len() == sp.len() + 2
        && dims[0] == n
        && (dims[1] == 1 || dims[1] == c)
        && &dims[2..] == sp
    {
        mask.clone()
    } else {
        return Err(shape_error(
            what,
            format!(
                "a mask of shape (N, 1 or C, spatial…) = ({n}, 1 or {c}, {sp:?}) or (N, spatial…)"
            ),
            mask.shape(),
        ));
    };
    let mask = mask.to_dtype(prediction.dtype())?;
    let ok = (mask.ge(0.0)? * mask.lt(f64::INFINITY)?)?;
    if ok.min_all()?.to_scalar::<u8>()? == 0 {
        return Err(invalid_value(
            what,
            "mask weights must be finite and non-negative (1 = counts, 0 = ignored)",
        ));
    }
    Ok(mask)
}

/// Class labels `(N, 1, spatial…)` as i64, from `(N, spatial…)` or `(N, 1, spatial…)` integers.
/// Every label must be the ignore value or lie in `0..num_labels`.
pub(crate) fn prepare_labels(
    what: &'static str,
    prediction: &Tensor,
    target: &Tensor,
    num_labels: usize,
    ignore_index: i64,
) -> Result<Tensor> {
    let n = prediction.dim(0)?;
    let sp = spatial(prediction);
    let dims = target.dims();
    let labels = if dims.len() == sp.len() + 1 && dims[0] == n && &dims[1..] == sp {
        target.unsqueeze(1)?
    } else if dims.len() == sp.len() + 2 && dims[0] == n && dims[1] == 1 && &dims[2..] == sp {
        target.clone()
    } else {
        return Err(shape_error(
            what,
            format!("integer labels of shape (N, spatial…) = ({n}, {sp:?})"),
            target.shape(),
        ));
    };
    let labels = labels.to_dtype(DType::I64)?;
    let in_range = (labels.ge(0.0)? * labels.lt(num_labels as f64)?)?;
    let ok = in_range.maximum(&labels.eq(ignore_index as f64)?)?;
    if ok.min_all()?.to_scalar::<u8>()? == 0 {
        let values = labels.flatten_all()?.to_vec1::<i64>()?;
        let bad = values
            .iter()
            .copied()
            .find(|&v| v != ignore_index && (v < 0 || v >= num_labels as i64))
            .unwrap_or(ignore_index);
        return Err(invalid_value(
            what,
            format!(
                "found label {bad}: labels must lie in 0..{num_labels} or equal the ignore value {ignore_index}"
            ),
        ));
    }
    Ok(labels)
}

/// Targets and weights for a loss over class probabilities.
///
/// * Integer `target`: class labels. With `C ≥ 2` channels they are one-hot encoded over the `C`
///   classes; with one channel (binary) they must be 0 or 1 and the target is `label == 1`.
///   Pixels equal to `ignore_index` get weight 0.
/// * Floating-point `target` with the prediction's shape: soft (or one-hot) targets in `[0, 1]`,
///   every pixel labelled.
///
/// The mask, if any, multiplies the weights.
pub(crate) fn class_targets(
    what: &'static str,
    prediction: &Tensor,
    target: &Tensor,
    mask: Option<&Tensor>,
    ignore_index: i64,
) -> Result<ClassTargets> {
    check_prediction(what, prediction)?;
    let dtype = prediction.dtype();
    let c = prediction.dim(1)?;
    let (y, w) = if target.dtype().is_int() {
        let num_labels = c.max(2);
        let labels = prepare_labels(what, prediction, target, num_labels, ignore_index)?;
        let valid = labels.ne(ignore_index as f64)?.to_dtype(dtype)?;
        let y = if c == 1 {
            labels.eq(1.0)?.to_dtype(dtype)?
        } else {
            let mut class_shape = vec![1usize; prediction.rank()];
            class_shape[1] = c;
            let classes =
                Tensor::arange(0i64, c as i64, prediction.device())?.reshape(class_shape)?;
            labels.broadcast_eq(&classes)?.to_dtype(dtype)?
        };
        let y = y.broadcast_mul(&valid)?;
        (y, valid)
    } else {
        if target.shape() != prediction.shape() {
            return Err(shape_error(
                what,
                format!(
                    "integer labels (N, spatial…) or floating-point targets of the prediction's shape {:?}",
                    prediction.dims()
                ),
                target.shape(),
            ));
        }
        let y = target.to_dtype(dtype)?;
        check_probabilities(what, &y).map_err(|_| {
            invalid_value(
                what,
                "floating-point targets must lie in [0, 1]; pass integer class labels with an ignore value for sparse labels",
            )
        })?;
        let mut w_shape = prediction.dims().to_vec();
        w_shape[1] = 1;
        let w = Tensor::ones(w_shape, dtype, prediction.device())?;
        (y, w)
    };
    let w = match mask {
        Some(m) => w.broadcast_mul(&prepare_mask(what, prediction, m)?)?,
        None => w,
    };
    Ok(ClassTargets { y, w })
}

/// Turns a prediction into class probabilities: sigmoid for one channel, softmax over the
/// channels otherwise, or a range check when it already holds probabilities.
pub(crate) fn probabilities(
    what: &'static str,
    prediction: &Tensor,
    kind: crate::PredictionKind,
) -> Result<Tensor> {
    match kind {
        crate::PredictionKind::Probabilities => {
            check_probabilities(what, prediction)?;
            Ok(prediction.clone())
        }
        crate::PredictionKind::Logits => {
            if prediction.dim(1)? == 1 {
                crate::ops::sigmoid(prediction)
            } else {
                crate::ops::softmax_channels(prediction)
            }
        }
    }
}
