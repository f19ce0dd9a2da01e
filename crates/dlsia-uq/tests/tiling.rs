//! Streaming over tiles gives the same results as whole images, in 2D and 3D.

mod common;

use candle_core::{DType, Tensor};
use common::*;
use dlsia_uq::conformal::{ConformalConfig, ScoreMethod};
use dlsia_uq::*;

/// A "network" with no spatial context: per-pixel logits from the input channels, so tiles
/// can be compared with whole images exactly.
fn pixelwise() -> LogitsFn<impl Fn(&Tensor) -> candle_core::Result<Tensor> + Send + Sync> {
    LogitsFn::new(3, |x: &Tensor| {
        let a = x.narrow(1, 0, 1)?;
        let b = x.narrow(1, 1, 1)?;
        Tensor::cat(&[&a, &b, &(a.affine(-1.0, 0.0)? - &b)?], 1)
    })
    .unwrap()
}

fn check(spatial: &[usize], tile: Vec<usize>, method: ScoreMethod) {
    let mut r = rng(11);
    let mut shape = vec![2, 2];
    shape.extend_from_slice(spatial);
    let image = randn(&shape, 1.5, &mut r);
    let net = pixelwise();
    let probs = net.predict_proba(&image).unwrap();
    // Labels: the arg-max, with every third pixel unlabelled.
    let am = probs.argmax_keepdim(1).unwrap().squeeze(1).unwrap();
    let v: Vec<i64> = am
        .flatten_all()
        .unwrap()
        .to_vec1::<u32>()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, &c)| if i % 3 == 0 { -1 } else { c as i64 })
        .collect();
    let labels = Tensor::from_vec(v, am.shape(), &dev()).unwrap();

    let mut cfg = ConformalConfig::new(0.2);
    cfg.method = method;
    cfg.spacing = Some(vec![2]);
    let tiling = Tiling::new(tile).unwrap();
    let mut whole = cfg.build().unwrap();
    whole.update(&probs, &labels).unwrap();
    let mut tiled = cfg.build().unwrap();
    tiling.calibrate(&mut tiled, &net, &image, &labels).unwrap();
    let (mut a, mut b) = (whole.scores().to_vec(), tiled.scores().to_vec());
    if !matches!(method, ScoreMethod::Aps { randomized: true }) {
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        assert_eq!(a, b);
    } else {
        assert_eq!(a.len(), b.len());
    }
    let cp = whole.predictor().unwrap();
    let sizes_whole = cp.set_sizes(&probs).unwrap();
    let sizes_tiled = tiling.set_sizes(&cp, &net, &image).unwrap();
    assert_eq!(flat(&sizes_whole), flat(&sizes_tiled));
    let cov_whole = cp.coverage(&probs, &labels, -1).unwrap();
    let cov_tiled = tiling.coverage(&cp, &net, &image, &labels, -1).unwrap();
    assert_eq!(cov_whole, cov_tiled);
    let am_tiled = tiling.argmax(&net, &image).unwrap();
    assert_eq!(
        flat(&am_tiled),
        flat(&probs.argmax_keepdim(1).unwrap().squeeze(1).unwrap())
    );
}

#[test]
fn tiles_equal_whole_images_2d() {
    check(&[13, 10], vec![4, 6], ScoreMethod::Lac);
    check(&[13, 10], vec![5, 5], ScoreMethod::Aps { randomized: true });
}

#[test]
fn tiles_equal_whole_volumes_3d() {
    check(&[5, 7, 6], vec![2, 3, 4], ScoreMethod::Lac);
    check(
        &[5, 7, 6],
        vec![3, 3, 3],
        ScoreMethod::Aps { randomized: false },
    );
}

#[test]
fn tiling_errors() {
    assert!(Tiling::new(vec![]).is_err());
    assert!(Tiling::new(vec![4, 0]).is_err());
    let t = Tiling::new(vec![4, 4]).unwrap();
    assert!(t.regions(&[8, 8, 8]).is_err());
    // A predictor that changes the spatial size cannot be tiled.
    let shrink = LogitsFn::new(2, |x: &Tensor| x.narrow(2, 0, 1)?.repeat((1, 2, 1, 1))).unwrap();
    let image = Tensor::zeros((1, 1, 8, 8), DType::F32, &dev()).unwrap();
    let e = t.argmax(&shrink, &image).unwrap_err().to_string();
    assert!(e.contains("spatial size"), "{e}");
}
