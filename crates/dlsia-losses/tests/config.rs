//! `LossConfig`: TOML/JSON round trips, defaults, unknown keys and names.

mod common;

use common::*;
use dlsia_losses::*;

#[test]
fn every_loss_parses_from_toml_with_defaults() {
    for name in [
        "cross_entropy",
        "binary_cross_entropy",
        "dice",
        "dice_bce",
        "focal",
        "focal_dlsia",
        "tversky",
        "focal_tversky",
        "masked_l1",
        "masked_mse",
    ] {
        let cfg: LossConfig = toml::from_str(&format!("name = \"{name}\"")).unwrap();
        cfg.build().unwrap();
        // Round trip through TOML and JSON.
        let back: LossConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        let back: LossConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
    }
    let cfg: LossConfig = toml::from_str("name = \"tversky\"").unwrap();
    assert_eq!(cfg, LossConfig::Tversky(TverskyConfig::default()));
    let t = TverskyConfig::default();
    assert_eq!((t.alpha, t.beta, t.smooth), (0.75, 0.25, 1.0));
}

#[test]
fn hyperparameters_are_read_and_checked() {
    let cfg: LossConfig = toml::from_str(
        r#"
        name = "focal_tversky"
        alpha = 0.7
        beta = 0.3
        gamma = 1.33
        input = "probabilities"
        class_average = "pooled"
        ignore_index = 255
    "#,
    )
    .unwrap();
    match &cfg {
        LossConfig::FocalTversky(c) => {
            assert_eq!(
                (c.alpha, c.beta, c.gamma, c.ignore_index),
                (0.7, 0.3, 1.33, 255)
            );
            assert_eq!(c.input, PredictionKind::Probabilities);
            assert_eq!(c.class_average, ClassAverage::Pooled);
        }
        other => panic!("parsed {other:?}"),
    }
    cfg.build().unwrap();
    let bad: LossConfig = toml::from_str("name = \"focal_tversky\"\ngamma = -1.0").unwrap();
    assert!(bad.build().err().unwrap().to_string().contains("gamma"));
}

#[test]
fn unknown_keys_and_names_are_errors() {
    let e = toml::from_str::<LossConfig>("name = \"dice\"\nsmoth = 2.0").unwrap_err();
    assert!(e.to_string().contains("smoth"), "{e}");
    let e = toml::from_str::<LossConfig>("name = \"dise\"").unwrap_err();
    assert!(e.to_string().contains("dise"), "{e}");
    let e = toml::from_str::<LossConfig>("name = \"dice\"\ninput = \"softmax\"").unwrap_err();
    assert!(e.to_string().contains("softmax"), "{e}");
}

#[test]
fn tv_regularized_nests_a_base_loss() {
    let cfg: LossConfig = toml::from_str(
        r#"
        name = "tv_regularized"
        weights = [0.1, 0.2]
        on = "softmax"
        [base]
        name = "cross_entropy"
        class_weights = [1.0, 2.0]
    "#,
    )
    .unwrap();
    let loss = cfg.build().unwrap();
    let x = randn(&[1, 2, 3, 3], 1.0, 1);
    let y = labels(&[1, 3, 3], 2, 0.2, 2);
    let base = CrossEntropyConfig {
        class_weights: Some(vec![1.0, 2.0]),
        ..Default::default()
    }
    .build()
    .unwrap();
    let tv = TotalVariation::new(vec![0.1, 0.2], TvOn::Softmax).unwrap();
    let want = scalar(&base.loss(&x, &y, None).unwrap()) + scalar(&tv.value(&x).unwrap());
    assert_close(
        scalar(&loss.loss(&x, &y, None).unwrap()),
        want,
        1e-12,
        "tv config",
    );
}
