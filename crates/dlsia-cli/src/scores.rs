//! Scores of a segmentation or regression against its reference, as the commands report them
//! (printed and written to `metrics.json`).

use anyhow::{ensure, Result};
use dlsia_losses::metrics::{ConfusionMatrix, Pearson};
use serde::Serialize;

/// Segmentation scores over all labelled pixels.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentationScores {
    /// Labelled pixels compared.
    pub pixels: u64,
    /// Fraction of labelled pixels with the right class.
    pub accuracy: f64,
    /// Micro-averaged F1 (equals accuracy for single-label pixels).
    pub f1_micro: f64,
    /// Macro-averaged F1 over the classes present.
    pub f1_macro: f64,
    /// Mean intersection over union over the classes present.
    pub mean_iou: f64,
    /// F1 of each class (`null`: absent from both prediction and reference).
    pub f1_per_class: Vec<Option<f64>>,
    /// IoU of each class.
    pub iou_per_class: Vec<Option<f64>>,
}

/// Compares predicted labels with reference labels (pixels labelled `ignore_label` are skipped).
pub fn segmentation_scores(
    predicted: &[i64],
    reference: &[i64],
    num_classes: usize,
    ignore_label: i64,
) -> Result<SegmentationScores> {
    ensure!(
        predicted.len() == reference.len(),
        "the prediction has {} pixels but the labels have {}",
        predicted.len(),
        reference.len()
    );
    let mut cm = ConfusionMatrix::new(num_classes, ignore_label)?;
    cm.update_from_slices(predicted, reference)?;
    ensure!(
        cm.total() > 0,
        "no labelled pixels to compare (every label is the ignore label {ignore_label})"
    );
    Ok(SegmentationScores {
        pixels: cm.total(),
        accuracy: cm.accuracy(),
        f1_micro: cm.f1_micro(),
        f1_macro: cm.f1_macro(),
        mean_iou: cm.mean_iou(),
        f1_per_class: cm.f1_per_class(),
        iou_per_class: cm.iou_per_class(),
    })
}

/// Regression scores.
#[derive(Debug, Clone, Serialize)]
pub struct RegressionScores {
    /// Values compared.
    pub values: usize,
    /// Pearson correlation.
    pub pearson: Option<f64>,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
}

/// Compares predicted values with reference values.
pub fn regression_scores(predicted: &[f32], reference: &[f32]) -> Result<RegressionScores> {
    ensure!(
        predicted.len() == reference.len(),
        "the prediction has {} values but the reference has {}",
        predicted.len(),
        reference.len()
    );
    ensure!(
        !predicted.is_empty(),
        "nothing to compare: the images are empty"
    );
    let p: Vec<f64> = predicted.iter().map(|&v| f64::from(v)).collect();
    let r: Vec<f64> = reference.iter().map(|&v| f64::from(v)).collect();
    let mut pearson = Pearson::new();
    pearson.update_slices(&p, &r, None)?;
    let n = p.len() as f64;
    let mae = p.iter().zip(&r).map(|(a, b)| (a - b).abs()).sum::<f64>() / n;
    let mse = p.iter().zip(&r).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / n;
    Ok(RegressionScores {
        values: p.len(),
        pearson: pearson.compute(),
        mae,
        rmse: mse.sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmentation_scores_by_hand() {
        // reference 0 0 1 1 -1, prediction 0 1 1 1 0: 3 of 4 labelled pixels right.
        let s = segmentation_scores(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, -1], 2, -1).unwrap();
        assert_eq!(s.pixels, 4);
        assert!((s.accuracy - 0.75).abs() < 1e-12);
        // class 0: tp 1, fp 0, fn 1 → F1 2/3, IoU 1/2; class 1: tp 2, fp 1, fn 0 → F1 4/5, IoU 2/3.
        assert!((s.f1_per_class[0].unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.f1_per_class[1].unwrap() - 0.8).abs() < 1e-12);
        assert!((s.mean_iou - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!(segmentation_scores(&[0], &[0, 1], 2, -1).is_err());
        assert!(segmentation_scores(&[0], &[-1], 2, -1).is_err());
    }

    #[test]
    fn regression_scores_by_hand() {
        let s = regression_scores(&[1.0, 2.0, 4.0], &[1.0, 3.0, 5.0]).unwrap();
        assert!((s.mae - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.rmse - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        // x = (1,2,4), y = (1,3,5): centred (−4/3, −1/3, 5/3), (−2, 0, 2) → r = 6/√(14/3·8)·(1/1)
        let want = 6.0 / ((14.0 / 3.0) * 8.0f64).sqrt();
        assert!((s.pearson.unwrap() - want).abs() < 1e-9);
    }
}
