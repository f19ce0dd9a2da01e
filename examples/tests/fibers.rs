//! The fibers workflow's `--quick` run: the ensemble's confident segmentation must match the
//! generator's ground truth well and find the fibers.

use dlsia_examples::fibers::{run, FiberSettings};

#[test]
fn quick_fibers_segment_and_find_the_fibers() {
    let tmp = tempfile::tempdir().unwrap();
    let s = run(&FiberSettings::quick(0), tmp.path()).unwrap();
    assert_eq!(s.members.len(), 5);
    assert!(s
        .members
        .iter()
        .all(|m| m.parameters > 0 && m.final_loss.is_finite()));
    assert!(s.labelled_voxels.0 > 0 && s.labelled_voxels.1 > 0);
    assert!(s.scores.f1 > 0.7, "F1 {:?}", s.scores);
    assert!(
        s.scores.precision > 0.6 && s.scores.recall > 0.6,
        "{:?}",
        s.scores
    );
    assert!(s.unsure_fraction < 0.2, "unsure {}", s.unsure_fraction);
    assert_eq!(s.fibers_present, 8);
    assert!(
        s.fibers_detected >= 6,
        "{} of 8 detected",
        s.fibers_detected
    );
    assert!(s.components_found >= 1 && s.lengths.len() == s.components_found);
    assert!(s.lengths.iter().all(|&l| l > 0.0));
    let norm: f64 = s.peak_direction.iter().map(|v| v * v).sum();
    assert!((norm - 1.0).abs() < 1e-6, "{:?}", s.peak_direction);
    for f in [
        "summary.json",
        "fibers.csv",
        "fiber_lengths.svg",
        "orientation_hammer.svg",
        "orientation_hammer.png",
        "middle_slice_overlay.png",
        "middle_slice_mean.png",
        "middle_slice_std.png",
    ] {
        assert!(tmp.path().join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(tmp.path().join("fibers.csv")).unwrap();
    assert_eq!(csv.lines().count(), s.components_found + 1);
}

#[test]
fn an_ensemble_of_one_is_an_error() {
    let mut s = FiberSettings::quick(0);
    s.ensemble.n_networks = 1;
    let e = run(&s, tempfile::tempdir().unwrap().path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least 2 networks"), "{e}");
}
