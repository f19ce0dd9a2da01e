//! Parity with the PyTorch original (dlsia 0.3.4 losses, torch's CrossEntropyLoss, torchmetrics
//! F1 through dlsia's `segmentation_metrics`, dlsia's `regression_metrics`): values and
//! gradients on fixtures written by `tools/losses_fixtures.py`.

mod common;

use candle_core::Tensor;
use common::*;
use dlsia_losses::metrics::{ConfusionMatrix, Pearson};
use dlsia_losses::*;

const P: PredictionKind = PredictionKind::Probabilities;

fn check(name: &str, loss: &dyn Loss, x: &Tensor, target: &Tensor, mask: Option<&Tensor>) {
    let f = fixtures();
    let (v, g) = value_and_grad(loss, x, target, mask);
    assert_close(v, fixture_scalar(&f, name), 2e-6, name);
    let want_g = &f[&format!("{name}_grad")];
    let err = max_abs_diff(&g, want_g);
    let scale = flat(want_g).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(
        err < 1e-6 * (1.0 + scale),
        "{name}: gradient differs by {err} (largest gradient {scale})"
    );
}

#[test]
fn binary_losses_match_the_original() {
    let f = fixtures();
    let (p, y) = (&f["bin_p"], &f["bin_y"]);
    let dice = DiceConfig {
        input: P,
        ..Default::default()
    };
    check("bin_dice", &dice.build().unwrap(), p, y, None);
    let dbce = DiceBceConfig {
        input: P,
        ..Default::default()
    };
    check("bin_dicebce", &dbce.build().unwrap(), p, y, None);
    let dbce2 = DiceBceConfig {
        input: P,
        smooth: 0.5,
        alpha: 0.3,
        ..Default::default()
    };
    check("bin_dicebce_a03", &dbce2.build().unwrap(), p, y, None);
    let focal = FocalDlsiaConfig {
        input: P,
        ..Default::default()
    };
    check("bin_focal", &focal.build().unwrap(), p, y, None);
    let focal2 = FocalDlsiaConfig {
        input: P,
        alpha: 0.5,
        gamma: 2.0,
        ..Default::default()
    };
    check("bin_focal_a05_g2", &focal2.build().unwrap(), p, y, None);
    let tv = TverskyConfig {
        input: P,
        ..Default::default()
    };
    check("bin_tversky", &tv.build().unwrap(), p, y, None);
    let ft = FocalTverskyConfig {
        input: P,
        ..Default::default()
    };
    check("bin_focal_tversky", &ft.build().unwrap(), p, y, None);
    let ft2 = FocalTverskyConfig {
        input: P,
        smooth: 2.0,
        alpha: 0.7,
        beta: 0.3,
        gamma: 1.5,
        ..Default::default()
    };
    check("bin_focal_tversky_a7", &ft2.build().unwrap(), p, y, None);
    let bce = BinaryCrossEntropyConfig {
        input: P,
        ..Default::default()
    };
    check("bin_bce", &bce.build().unwrap(), p, y, None);
}

#[test]
fn pooled_multiclass_overlap_losses_match_the_original() {
    let f = fixtures();
    let (p, y) = (&f["mc_p"], &f["mc_onehot"]);
    let pooled = ClassAverage::Pooled;
    let dice = DiceConfig {
        input: P,
        class_average: pooled,
        ..Default::default()
    };
    check("mc_dice", &dice.build().unwrap(), p, y, None);
    let tv = TverskyConfig {
        input: P,
        class_average: pooled,
        ..Default::default()
    };
    check("mc_tversky", &tv.build().unwrap(), p, y, None);
    let ft = FocalTverskyConfig {
        input: P,
        class_average: pooled,
        ..Default::default()
    };
    check("mc_focal_tversky", &ft.build().unwrap(), p, y, None);
    let focal = FocalDlsiaConfig {
        input: P,
        ..Default::default()
    };
    check("mc_focal", &focal.build().unwrap(), p, y, None);
    // The same one-hot targets given as integer labels give the same losses.
    let labels = y.argmax_keepdim(1).unwrap().squeeze(1).unwrap();
    let d = dice.build().unwrap();
    let a = scalar(&d.loss(p, &labels, None).unwrap());
    let b = scalar(&d.loss(p, y, None).unwrap());
    assert_close(a, b, 1e-7, "labels vs one-hot");
}

#[test]
fn cross_entropy_matches_torch_with_ignore_index_and_weights() {
    let f = fixtures();
    let (z, l) = (&f["ce_logits"], &f["ce_labels"]);
    check("ce_plain", &CrossEntropy::default(), z, l, None);
    let w = flat(&f["ce_weights"]);
    let ce = CrossEntropyConfig {
        class_weights: Some(w),
        ..Default::default()
    };
    check("ce_weighted", &ce.build().unwrap(), z, l, None);
}

#[test]
fn masked_regression_losses_match_the_original() {
    let f = fixtures();
    let (x, y, m) = (&f["reg_x"], &f["reg_y"], &f["reg_mask"]);
    check("reg_l1", &MaskedL1, x, y, Some(m));
    check("reg_mse", &MaskedMse, x, y, Some(m));
}

#[test]
fn total_variation_combinations_match_the_original() {
    let f = fixtures();
    let w = flat(&f["tv_w"]);
    let tv2 = TvRegularized::new(
        Box::new(MaskedMse),
        TotalVariation::new(w.clone(), TvOn::Prediction).unwrap(),
    );
    check("tv2d", &tv2, &f["reg_x"], &f["reg_y"], None);
    let tv3 = TvRegularized::new(
        Box::new(CrossEntropy::default()),
        TotalVariation::new(w, TvOn::Softmax).unwrap(),
    );
    check("tv3d", &tv3, &f["tv3_logits"], &f["tv3_labels"], None);
}

#[test]
fn f1_matches_torchmetrics_through_segmentation_metrics() {
    let f = fixtures();
    for i in 0..3 {
        let probs = &f[&format!("f1_{i}_probs")];
        let target = &f[&format!("f1_{i}_target")];
        let mut cm = ConfusionMatrix::new(probs.dim(1).unwrap(), -1).unwrap();
        cm.update_from_scores(probs, target).unwrap();
        let micro = fixture_scalar(&f, &format!("f1_{i}_micro"));
        let macro_ = fixture_scalar(&f, &format!("f1_{i}_macro"));
        assert_close(cm.f1_micro(), micro, 1e-6, &format!("case {i} micro"));
        assert_close(cm.f1_macro(), macro_, 1e-6, &format!("case {i} macro"));
    }
}

#[test]
fn f1_over_an_epoch_equals_f1_of_the_concatenated_batches() {
    let f = fixtures();
    let probs = &f["f1_0_probs"];
    let target = &f["f1_0_target"];
    let mut whole = ConfusionMatrix::new(4, -1).unwrap();
    whole.update_from_scores(probs, target).unwrap();
    let mut batched = ConfusionMatrix::new(4, -1).unwrap();
    for i in 0..probs.dim(0).unwrap() {
        batched
            .update_from_scores(
                &probs.narrow(0, i, 1).unwrap(),
                &target.narrow(0, i, 1).unwrap(),
            )
            .unwrap();
    }
    assert_eq!(whole, batched);
}

#[test]
fn pearson_matches_regression_metrics() {
    let f = fixtures();
    let (a, b) = (&f["pearson_a"], &f["pearson_b"]);
    let mut r = Pearson::new();
    // Fed in three batches: the streaming result equals the whole-tensor correlation.
    for i in 0..3 {
        r.update(
            &a.narrow(0, i, 1).unwrap(),
            &b.narrow(0, i, 1).unwrap(),
            None,
        )
        .unwrap();
    }
    assert_close(
        r.compute().unwrap(),
        fixture_scalar(&f, "pearson"),
        1e-6,
        "pearson",
    );
}
