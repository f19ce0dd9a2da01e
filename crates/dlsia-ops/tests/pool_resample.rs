//! `max_pool`, `pad`, `upsample_nearest*` and `softmax_channels` against naive references,
#![allow(
    clippy::too_many_arguments,
    clippy::needless_range_loop,
    clippy::type_complexity
)]
//! with their gradients; regression tests for Candle 0.11's pooling and softmax defects.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use dlsia_ops::{
    max_pool, pad, softmax_channels, upsample_nearest, upsample_nearest_scale, PaddingMode,
};

/// Naive max pool over 3 axes: output values and, for L = Σ y·gy, dL/dx (first maximum wins).
fn naive_pool(
    x: &[f64],
    planes: usize,
    input: [usize; 3],
    k: [usize; 3],
    s: [usize; 3],
    p: [usize; 3],
    gy: &[f64],
) -> (Vec<f64>, Vec<f64>, [usize; 3]) {
    let out: Vec<usize> = (0..3)
        .map(|i| (input[i] + 2 * p[i] - k[i]) / s[i] + 1)
        .collect();
    let (iv, ov) = (
        input.iter().product::<usize>(),
        out.iter().product::<usize>(),
    );
    let mut y = vec![0.0; planes * ov];
    let mut gx = vec![0.0; x.len()];
    for pl in 0..planes {
        let mut yi = 0;
        for o0 in 0..out[0] {
            for o1 in 0..out[1] {
                for o2 in 0..out[2] {
                    let mut best = (f64::NEG_INFINITY, usize::MAX);
                    for a in 0..k[0] {
                        for b in 0..k[1] {
                            for c in 0..k[2] {
                                let q = [
                                    (o0 * s[0] + a) as isize - p[0] as isize,
                                    (o1 * s[1] + b) as isize - p[1] as isize,
                                    (o2 * s[2] + c) as isize - p[2] as isize,
                                ];
                                if (0..3).any(|i| q[i] < 0 || q[i] >= input[i] as isize) {
                                    continue;
                                }
                                let xi = pl * iv
                                    + ((q[0] as usize * input[1]) + q[1] as usize) * input[2]
                                    + q[2] as usize;
                                if best.1 == usize::MAX || x[xi] > best.0 {
                                    best = (x[xi], xi);
                                }
                            }
                        }
                    }
                    y[pl * ov + yi] = best.0;
                    gx[best.1] += gy[pl * ov + yi];
                    yi += 1;
                }
            }
        }
    }
    (y, gx, [out[0], out[1], out[2]])
}

fn pool_case(
    name: &str,
    nd: usize,
    n: usize,
    c: usize,
    input: [usize; 3],
    k: [usize; 3],
    s: [usize; 3],
    p: [usize; 3],
) {
    let xd: Vec<usize> = [vec![n, c], input[3 - nd..].to_vec()].concat();
    let xs = rnd(xd.iter().product(), 21);
    let out: Vec<usize> = (0..3)
        .map(|i| (input[i] + 2 * p[i] - k[i]) / s[i] + 1)
        .collect();
    let gys = rnd(n * c * out.iter().product::<usize>(), 22);
    let (y_ref, gx_ref, o3) = naive_pool(&xs, n * c, input, k, s, p, &gys);
    let x = var(&xs, &xd);
    let y = max_pool(x.as_tensor(), &k[3 - nd..], &s[3 - nd..], &p[3 - nd..]).unwrap();
    let yd: Vec<usize> = [vec![n, c], o3[3 - nd..].to_vec()].concat();
    assert_eq!(y.dims(), &yd[..], "{name} shape");
    assert_eq!(flat(&y), y_ref, "{name} forward");
    let gy = tensor(&gys, &yd);
    let gx = flat(
        (&y * &gy)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap(),
    );
    assert_close(&format!("{name} dx"), &gx, &gx_ref, 1e-14);
    let loss = |xv: &[f64]| -> f64 {
        let y = max_pool(&tensor(xv, &xd), &k[3 - nd..], &s[3 - nd..], &p[3 - nd..]).unwrap();
        flat(&y).iter().zip(&gys).map(|(a, b)| a * b).sum()
    };
    check_fd(&format!("{name} dx"), &xs, &gx, loss, 1e-6);
    // f32 gives the same winners.
    let y32 = max_pool(
        &x.as_tensor().to_dtype(DType::F32).unwrap(),
        &k[3 - nd..],
        &s[3 - nd..],
        &p[3 - nd..],
    )
    .unwrap();
    assert_close(&format!("{name} f32"), &flat(&y32), &y_ref, 1e-7);
}

#[test]
fn max_pool_matches_naive_in_1d_2d_3d() {
    pool_case("2d k2 s2", 2, 2, 3, [1, 8, 8], [1, 2, 2], [1, 2, 2], [0; 3]);
    pool_case(
        "2d k3 s2 p1 (MSAE)",
        2,
        2,
        2,
        [1, 9, 10],
        [1, 3, 3],
        [1, 2, 2],
        [0, 1, 1],
    );
    pool_case(
        "2d odd size k2 s2",
        2,
        1,
        2,
        [1, 7, 9],
        [1, 2, 2],
        [1, 2, 2],
        [0; 3],
    );
    pool_case(
        "2d per-axis k(2,3) s(1,2) p(1,1)",
        2,
        2,
        2,
        [1, 6, 7],
        [1, 2, 3],
        [1, 1, 2],
        [0, 1, 1],
    );
    pool_case("3d k2 s2", 3, 2, 2, [4, 6, 5], [2, 2, 2], [2, 2, 2], [0; 3]);
    pool_case(
        "3d k(2,3,2) s(2,1,2) p(1,1,0)",
        3,
        1,
        3,
        [5, 4, 6],
        [2, 3, 2],
        [2, 1, 2],
        [1, 1, 0],
    );
    pool_case(
        "1d k3 s2",
        1,
        2,
        2,
        [1, 1, 11],
        [1, 1, 3],
        [1, 1, 2],
        [0, 0, 1],
    );
    // Rows of 19 windows: the 8-wide vector path plus a tail.
    pool_case(
        "2d k2 s2 wide",
        2,
        2,
        2,
        [1, 6, 39],
        [1, 2, 2],
        [1, 2, 2],
        [0; 3],
    );
    pool_case(
        "3d k2 s2 wide",
        3,
        1,
        2,
        [4, 4, 36],
        [2, 2, 2],
        [2, 2, 2],
        [0; 3],
    );
    pool_case(
        "2d k(3,2) s(3,2) wide",
        2,
        1,
        2,
        [1, 7, 40],
        [1, 3, 2],
        [1, 3, 2],
        [0; 3],
    );
}

#[test]
fn max_pool_vector_path_ties_and_nan() {
    // 2 rows × 40 columns, windows 2×2: ties everywhere except a few, one NaN window.
    let mut v = vec![1f32; 80];
    v[43] = 2.0; // window 1 (cols 2,3), second row: the maximum
    v[10] = f32::NAN; // window 5
    v[11] = 7.0;
    let x =
        candle_core::Var::from_tensor(&Tensor::from_vec(v, (1, 1, 2, 40), &Device::Cpu).unwrap())
            .unwrap();
    let y = max_pool(x.as_tensor(), &[2, 2], &[2, 2], &[0, 0]).unwrap();
    let yv = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(yv[1], 2.0);
    assert!(yv[5].is_nan());
    assert!(yv
        .iter()
        .enumerate()
        .all(|(i, &a)| i == 1 || i == 5 || a == 1.0));
    let g = y.sum_all().unwrap().backward().unwrap();
    let gx = g
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for w in 0..20 {
        let winner = match w {
            1 => 43,
            5 => 10,
            _ => 2 * w, // all ties: the first element in scan order
        };
        for (i, &gv) in gx.iter().enumerate() {
            if i % 40 / 2 == w {
                assert_eq!(
                    gv,
                    if i == winner { 1.0 } else { 0.0 },
                    "window {w} element {i}"
                );
            }
        }
    }
}

#[test]
fn max_pool2d_backward_regression_full_gradient_and_one_winner_per_window() {
    // Candle 0.11: gradient 0.25 at each maximum of a 2×2 window, and ties all get 1.
    let dev = Device::Cpu;
    let x = candle_core::Var::from_tensor(
        &Tensor::arange(1f32, 17., &dev)
            .unwrap()
            .reshape((1, 1, 4, 4))
            .unwrap(),
    )
    .unwrap();
    let g = max_pool(x.as_tensor(), &[2, 2], &[2, 2], &[0, 0])
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gx = g
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let want = [
        0., 0., 0., 0., 0., 1., 0., 1., 0., 0., 0., 0., 0., 1., 0., 1.,
    ];
    assert_eq!(gx, want);
    // All ties: exactly one winner per window, the first in scan order (PyTorch's rule).
    let x = candle_core::Var::from_tensor(&Tensor::ones((1, 1, 4, 4), DType::F32, &dev).unwrap())
        .unwrap();
    let g = max_pool(x.as_tensor(), &[2, 2], &[2, 2], &[0, 0])
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gx = g
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let want = [
        1., 0., 1., 0., 0., 0., 0., 0., 1., 0., 1., 0., 0., 0., 0., 0.,
    ];
    assert_eq!(gx, want);
    // Overlapping windows (kernel 3, stride 1) accumulate at a shared maximum.
    let mut v = vec![0f32; 25];
    v[12] = 5.0;
    let x =
        candle_core::Var::from_tensor(&Tensor::from_vec(v, (1, 1, 5, 5), &dev).unwrap()).unwrap();
    let g = max_pool(x.as_tensor(), &[3, 3], &[1, 1], &[0, 0])
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let gx = g
        .get(x.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(gx[12], 9.0);
    assert_eq!(gx.iter().sum::<f32>(), 9.0);
}

#[test]
fn max_pool_propagates_nan_like_pytorch() {
    let x = Tensor::new(&[[[1f32, f32::NAN, 3.0, 2.0]]], &Device::Cpu).unwrap();
    let y = max_pool(&x, &[2], &[2], &[0])
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(y[0].is_nan());
    assert_eq!(y[1], 3.0);
}

#[test]
fn max_pool_rejects_invalid_arguments() {
    let x = Tensor::zeros((1, 1, 4, 4), DType::F32, &Device::Cpu).unwrap();
    let e = |r: dlsia_ops::Result<Tensor>| r.unwrap_err().to_string();
    assert!(e(max_pool(&x, &[2, 2], &[0, 2], &[0, 0])).contains("at least 1"));
    assert!(e(max_pool(&x, &[2, 2], &[2, 2], &[2, 0])).contains("at most half"));
    assert!(e(max_pool(&x, &[5, 2], &[2, 2], &[0, 0])).contains("larger than the padded input"));
    assert!(e(max_pool(&x, &[2, 2, 2], &[2, 2, 2], &[0, 0, 0])).contains("rank 5"));
    assert!(e(max_pool(&x, &[2, 2], &[2], &[0, 0])).contains("one entry per spatial axis"));
    let xi = x.to_dtype(DType::I64).unwrap();
    assert!(e(max_pool(&xi, &[2, 2], &[2, 2], &[0, 0])).contains("unsupported dtype"));
}

// -------------------------------------------------------------------------- pad

#[test]
fn pad_all_modes_match_numpy_rules_with_gradients() {
    for mode in [
        PaddingMode::Zeros,
        PaddingMode::Reflect,
        PaddingMode::Replicate,
        PaddingMode::Symmetric,
    ] {
        for (nd, dims, pads) in [
            (1usize, vec![2usize, 2, 5], vec![(3usize, 2usize)]),
            (2, vec![1, 2, 4, 5], vec![(2, 1), (0, 3)]),
            (3, vec![1, 1, 3, 4, 4], vec![(1, 2), (3, 0), (2, 2)]),
        ] {
            let xs = rnd(dims.iter().product(), 31);
            let x = var(&xs, &dims);
            let y = pad(x.as_tensor(), &pads, mode).unwrap();
            let sp = &dims[2..];
            let out: Vec<usize> = sp.iter().zip(&pads).map(|(n, (b, a))| n + b + a).collect();
            assert_eq!(&y.dims()[2..], &out[..]);
            let planes = dims[0] * dims[1];
            let (iv, ov): (usize, usize) = (sp.iter().product(), out.iter().product());
            let mut y_ref = vec![0.0; planes * ov];
            let gys = rnd(planes * ov, 32);
            let mut gx_ref = vec![0.0; xs.len()];
            for pl in 0..planes {
                for o in 0..ov {
                    // decompose o into per-axis indices
                    let mut rem = o;
                    let mut idx = vec![0usize; nd];
                    for a in (0..nd).rev() {
                        idx[a] = rem % out[a];
                        rem /= out[a];
                    }
                    let src: Option<Vec<usize>> = (0..nd)
                        .map(|a| mode.source_index(idx[a] as isize - pads[a].0 as isize, sp[a]))
                        .collect();
                    if let Some(s) = src {
                        let mut xi = 0;
                        for a in 0..nd {
                            xi = xi * sp[a] + s[a];
                        }
                        y_ref[pl * ov + o] = xs[pl * iv + xi];
                        gx_ref[pl * iv + xi] += gys[pl * ov + o];
                    }
                }
            }
            assert_eq!(flat(&y), y_ref, "{mode:?} {nd}d forward");
            let gy = tensor(&gys, y.dims());
            let gx = flat(
                (&y * &gy)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap()
                    .get(x.as_tensor())
                    .unwrap(),
            );
            assert_close(&format!("{mode:?} {nd}d dx"), &gx, &gx_ref, 1e-14);
        }
    }
}

#[test]
fn pad_rejects_too_much_reflection() {
    let x = Tensor::zeros((1, 1, 3, 4), DType::F32, &Device::Cpu).unwrap();
    let e = pad(&x, &[(3, 0), (0, 0)], PaddingMode::Reflect)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("reflect padding (3, 0)") && e.contains("at most 2"),
        "{e}"
    );
    assert!(pad(&x, &[(3, 3), (4, 4)], PaddingMode::Symmetric).is_ok());
    assert!(pad(&x, &[(4, 0), (0, 0)], PaddingMode::Symmetric).is_err());
    assert!(pad(&x, &[(9, 9), (9, 9)], PaddingMode::Replicate).is_ok());
    assert!(pad(&x, &[(1, 1)], PaddingMode::Zeros)
        .unwrap_err()
        .to_string()
        .contains("rank 3"));
}

// -------------------------------------------------------------------------- upsample

#[test]
fn upsample_nearest_index_rule_and_gradient() {
    // src = floor(dst·in/out): 3 → 7 gives 0 0 0 1 1 2 2; 5 → 3 gives 0 1 3.
    let x = var(&[0.0, 1.0, 2.0], &[1, 1, 3]);
    let y = upsample_nearest(x.as_tensor(), &[7]).unwrap();
    assert_eq!(flat(&y), [0., 0., 0., 1., 1., 2., 2.]);
    let g = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(flat(g.get(x.as_tensor()).unwrap()), [3., 2., 2.]);
    let x5 = tensor(&[0.0, 1.0, 2.0, 3.0, 4.0], &[1, 1, 5]);
    assert_eq!(flat(&upsample_nearest(&x5, &[3]).unwrap()), [0., 1., 3.]);
    // 3-D to a fixed size (U-Net3+), per-axis different factors.
    let xs = rnd(2 * 2 * 3 * 2 * 4, 41);
    let x = var(&xs, &[2, 2, 3, 2, 4]);
    let y = upsample_nearest(x.as_tensor(), &[6, 5, 4]).unwrap();
    assert_eq!(y.dims(), &[2, 2, 6, 5, 4]);
    let maps = [
        [0, 0, 1, 1, 2, 2].to_vec(),
        [0, 0, 0, 1, 1].to_vec(),
        [0, 1, 2, 3].to_vec(),
    ];
    let yv = flat(&y);
    for p in 0..4 {
        for d in 0..6 {
            for h in 0..5 {
                for w in 0..4 {
                    let want = xs[p * 24 + (maps[0][d] * 2 + maps[1][h]) * 4 + maps[2][w]];
                    assert_eq!(yv[p * 120 + (d * 5 + h) * 4 + w], want);
                }
            }
        }
    }
    let gys = rnd(y.elem_count(), 42);
    let gx = flat(
        (&y * tensor(&gys, y.dims()))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap(),
    );
    let loss = |xv: &[f64]| -> f64 {
        let y = upsample_nearest(&tensor(xv, &[2, 2, 3, 2, 4]), &[6, 5, 4]).unwrap();
        flat(&y).iter().zip(&gys).map(|(a, b)| a * b).sum()
    };
    check_fd("upsample 3d dx", &xs, &gx, loss, 1e-6);
}

#[test]
fn upsample_scale_2d_3d() {
    let xs = rnd(2 * 3 * 4, 43);
    let x = var(&xs, &[1, 2, 3, 4]);
    let y = upsample_nearest_scale(x.as_tensor(), &[2, 3]).unwrap();
    assert_eq!(y.dims(), &[1, 2, 6, 12]);
    let yv = flat(&y);
    assert_eq!(yv[(6 + 5) * 12 + 7], xs[12 + 2 * 4 + 2]);
    let g = y.sum_all().unwrap().backward().unwrap();
    assert!(flat(g.get(x.as_tensor()).unwrap())
        .iter()
        .all(|&v| v == 6.0));
    let x3 = Tensor::ones((1, 1, 2, 2, 2), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        upsample_nearest_scale(&x3, &[2, 2, 2]).unwrap().dims(),
        &[1, 1, 4, 4, 4]
    );
    assert!(upsample_nearest_scale(&x3, &[2, 0, 2]).is_err());
    assert!(upsample_nearest(&x3, &[4, 4])
        .unwrap_err()
        .to_string()
        .contains("rank 4"));
}

// -------------------------------------------------------------------------- softmax

#[test]
fn softmax_channels_values_and_gradient() {
    let xs = rnd(2 * 3 * 2 * 2, 51);
    let x = var(&xs, &[2, 3, 2, 2]);
    let p = softmax_channels(x.as_tensor()).unwrap();
    let pv = flat(&p);
    for n in 0..2 {
        for s in 0..4 {
            let e: Vec<f64> = (0..3).map(|c| xs[(n * 3 + c) * 4 + s].exp()).collect();
            let z: f64 = e.iter().sum();
            for c in 0..3 {
                assert!((pv[(n * 3 + c) * 4 + s] - e[c] / z).abs() < 1e-15);
            }
        }
    }
    // Regression: candle's softmax_last_dim drops gradients; this one must not.
    let gys = rnd(p.elem_count(), 52);
    let gx = flat(
        (&p * tensor(&gys, p.dims()))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap(),
    );
    assert!(gx.iter().any(|v| v.abs() > 1e-3));
    let loss = |xv: &[f64]| -> f64 {
        let p = softmax_channels(&tensor(xv, &[2, 3, 2, 2])).unwrap();
        flat(&p).iter().zip(&gys).map(|(a, b)| a * b).sum()
    };
    check_fd("softmax dx", &xs, &gx, loss, 1e-6);
    // Large logits stay finite.
    let big = tensor(&[1000.0, -1000.0], &[1, 2]);
    assert_eq!(flat(&softmax_channels(&big).unwrap()), [1.0, 0.0]);
}
