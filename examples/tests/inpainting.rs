//! The inpainting workflow's `--quick` run: both networks must fill the gaps far better than
//! leaving them empty or filling them with the pattern's mean.

use dlsia_examples::inpainting::{run, InpaintingSettings};

#[test]
fn quick_inpainting_beats_trivial_fills() {
    let tmp = tempfile::tempdir().unwrap();
    let s = run(&InpaintingSettings::quick(0), tmp.path()).unwrap();
    assert!(s.gap_pixels > 100, "{} gap pixels", s.gap_pixels);
    assert!(
        s.zero_fill_l1 > s.mean_fill_l1,
        "{} vs {}",
        s.zero_fill_l1,
        s.mean_fill_l1
    );
    for net in [&s.tunet, &s.msdnet] {
        assert!(
            net.gap_l1 < 0.8 * s.mean_fill_l1,
            "{}: gap L1 {} vs mean fill {} (zero fill {})",
            net.network,
            net.gap_l1,
            s.mean_fill_l1,
            s.zero_fill_l1
        );
        assert!(
            net.gap_pearson > 0.6,
            "{}: Pearson {}",
            net.network,
            net.gap_pearson
        );
        assert_eq!(net.train_loss.len(), s.settings.epochs);
        assert!(
            net.train_loss.last().unwrap() < &net.train_loss[0],
            "{:?}",
            net.train_loss
        );
    }
    assert_eq!(s.tunet.parameters, 3739);
    for f in [
        "summary.json",
        "loss_curves.svg",
        "before.png",
        "truth.png",
        "after_tunet.png",
        "after_msdnet.png",
        "tunet-model/model.json",
        "msdnet-model/weights.safetensors",
    ] {
        assert!(tmp.path().join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("summary.json")).unwrap())
            .unwrap();
    assert!((json["tunet"]["gap_pearson"].as_f64().unwrap() - s.tunet.gap_pearson).abs() < 1e-12);
}

#[test]
fn inconsistent_settings_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = InpaintingSettings::quick(0);
    s.image_size = 64; // the TUNet was configured for 48×48
    let e = run(&s, tmp.path()).unwrap_err().to_string();
    assert!(e.contains("image_shape"), "{e}");
    let mut s = InpaintingSettings::quick(0);
    s.artificial_gaps = (0, 0);
    assert!(run(&s, tmp.path()).is_err());
}
