//! Adding unlabelled pixels (label −1, or mask weight 0) with arbitrary predictions leaves
//! every loss unchanged: they count in neither numerator nor denominator.

mod common;

use candle_core::Tensor;
use common::*;
use dlsia_losses::*;

fn all_class_losses() -> Vec<(&'static str, Box<dyn Loss>)> {
    let mut v: Vec<(&'static str, Box<dyn Loss>)> = vec![
        ("bce", Box::new(BinaryCrossEntropy::default())),
        ("dice", Box::new(DiceConfig::default().build().unwrap())),
        (
            "dice_pooled",
            Box::new(
                DiceConfig {
                    class_average: ClassAverage::Pooled,
                    ..Default::default()
                }
                .build()
                .unwrap(),
            ),
        ),
        (
            "dice_bce",
            Box::new(DiceBceConfig::default().build().unwrap()),
        ),
        (
            "tversky",
            Box::new(TverskyConfig::default().build().unwrap()),
        ),
        (
            "focal_tversky",
            Box::new(FocalTverskyConfig::default().build().unwrap()),
        ),
        ("focal", Box::new(FocalConfig::default().build().unwrap())),
        (
            "focal_dlsia",
            Box::new(FocalDlsiaConfig::default().build().unwrap()),
        ),
    ];
    v.push(("cross_entropy", Box::new(CrossEntropy::default())));
    v
}

fn check(channels: usize) {
    let (n, h, w, extra) = (2, 3, 4, 3);
    let x = randn(&[n, channels, h, w], 2.0, 1);
    let y = labels(&[n, h, w], channels.max(2), 0.2, 2);
    // Extra columns: wild predictions, label −1.
    let x_extra = randn(&[n, channels, h, extra], 40.0, 3);
    let x_big = Tensor::cat(&[&x, &x_extra], 3).unwrap();
    let y_missing = Tensor::full(-1i64, (n, h, extra), &dev()).unwrap();
    let y_big = Tensor::cat(&[&y, &y_missing], 2).unwrap();
    // Or: real labels there, but mask weight 0.
    let y_labelled = labels(&[n, h, extra], channels.max(2), 0.0, 4);
    let y_big2 = Tensor::cat(&[&y, &y_labelled], 2).unwrap();
    let m = uniform(&[n, 1, h, w], 0.2, 1.0, 5);
    let m_big = Tensor::cat(
        &[
            &m,
            &Tensor::zeros((n, 1, h, extra), m.dtype(), &dev()).unwrap(),
        ],
        3,
    )
    .unwrap();
    for (name, loss) in all_class_losses() {
        if name == "cross_entropy" && channels == 1 {
            continue;
        }
        let base = scalar(&loss.loss(&x, &y, Some(&m)).unwrap());
        let with_missing = scalar(&loss.loss(&x_big, &y_big, Some(&m_big)).unwrap());
        let with_zero_mask = scalar(&loss.loss(&x_big, &y_big2, Some(&m_big)).unwrap());
        assert_close(
            with_missing,
            base,
            1e-12,
            &format!("{name}/{channels}: label −1"),
        );
        assert_close(
            with_zero_mask,
            base,
            1e-12,
            &format!("{name}/{channels}: mask 0"),
        );
        // Without a mask, only the −1 labels are skipped.
        let base = scalar(&loss.loss(&x, &y, None).unwrap());
        let with_missing = scalar(&loss.loss(&x_big, &y_big, None).unwrap());
        assert_close(
            with_missing,
            base,
            1e-12,
            &format!("{name}/{channels}: no mask"),
        );
    }
}

#[test]
fn class_losses_ignore_unlabelled_pixels_binary() {
    check(1);
}

#[test]
fn class_losses_ignore_unlabelled_pixels_multiclass() {
    check(4);
}

#[test]
fn regression_losses_ignore_masked_pixels() {
    let x = randn(&[2, 2, 3, 4], 1.0, 1);
    let y = randn(&[2, 2, 3, 4], 1.0, 2);
    let m = uniform(&[2, 1, 3, 4], 0.2, 1.0, 3);
    let x_big = Tensor::cat(&[&x, &randn(&[2, 2, 3, 2], 100.0, 4)], 3).unwrap();
    let y_big = Tensor::cat(&[&y, &randn(&[2, 2, 3, 2], 1.0, 5)], 3).unwrap();
    let m_big = Tensor::cat(&[&m, &m.zeros_like().unwrap().narrow(3, 0, 2).unwrap()], 3).unwrap();
    for loss in [&MaskedL1 as &dyn Loss, &MaskedMse] {
        let a = scalar(&loss.loss(&x, &y, Some(&m)).unwrap());
        let b = scalar(&loss.loss(&x_big, &y_big, Some(&m_big)).unwrap());
        assert_close(a, b, 1e-12, "regression");
    }
}

#[test]
fn a_batch_without_labels_gives_zero_loss_and_zero_gradient() {
    let x = randn(&[1, 3, 2, 2], 1.0, 1);
    let y = Tensor::full(-1i64, (1, 2, 2), &dev()).unwrap();
    for (name, loss) in all_class_losses() {
        let (v, g) = value_and_grad(loss.as_ref(), &x, &y, None);
        assert!(v.is_finite(), "{name}: {v}");
        assert!(flat(&g).iter().all(|g| *g == 0.0), "{name}");
    }
}
