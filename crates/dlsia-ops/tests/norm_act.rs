//! The fused `batch_norm_act_train` against a naive f64 reference, f64 finite differences for
//! every gradient, and the unfused composition (bias addition → BatchNorm → activation) it
//! replaces, in f64 and f32; the same for `conv_batch_norm_act_train` against `conv` followed
//! by `batch_norm_act_train`.
#![allow(clippy::needless_range_loop)]

mod common;

use candle_core::{DType, Device, ModuleT, Tensor};
use common::{assert_close, check_fd, flat, rnd, tensor, var, var_on};
use dlsia_ops::nn::BatchNorm;
use dlsia_ops::{
    batch_norm_act_train, batch_norm_act_train_composed, conv, conv_batch_norm_act_train, ActOrder,
    ConvSpec, FusedAct, NormActSpec, ParamStore,
};

const EPS: f64 = 1e-5;

fn act_f64(a: FusedAct, z: f64) -> f64 {
    match a {
        FusedAct::Identity => z,
        FusedAct::Relu => z.max(0.0),
        FusedAct::LeakyRelu(s) => {
            if z > 0.0 {
                z
            } else {
                s * z
            }
        }
    }
}

/// Naive f64 `act(BN(x + b₀))` or `BN(act(x + b₀))` on an `(N, C, S)` buffer.
#[allow(clippy::too_many_arguments)]
fn naive(
    x: &[f64],
    pre: &[f64],
    w: &[f64],
    b: &[f64],
    c: usize,
    s: usize,
    act: FusedAct,
    order: ActOrder,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let ch = |i: usize| (i / s) % c;
    let u: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let v = v + pre[ch(i)];
            match order {
                ActOrder::AfterNorm => v,
                ActOrder::BeforeNorm => act_f64(act, v),
            }
        })
        .collect();
    let cnt = (x.len() / c) as f64;
    let mut mean = vec![0.0; c];
    for (i, v) in u.iter().enumerate() {
        mean[ch(i)] += v / cnt;
    }
    let mut var = vec![0.0; c];
    for (i, v) in u.iter().enumerate() {
        var[ch(i)] += (v - mean[ch(i)]).powi(2) / cnt;
    }
    let y = u
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let k = ch(i);
            let z = (v - mean[k]) / (var[k] + EPS).sqrt() * w[k] + b[k];
            match order {
                ActOrder::AfterNorm => act_f64(act, z),
                ActOrder::BeforeNorm => z,
            }
        })
        .collect();
    (y, mean, var)
}

/// `Σ y·g` with its autograd gradients for the given variables.
fn grads(y: &Tensor, g: &Tensor, vars: &[&Tensor]) -> Vec<Vec<f64>> {
    let gs = (y * g.to_dtype(y.dtype()).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    vars.iter().map(|v| flat(gs.get(v).unwrap())).collect()
}

const ACTS: [FusedAct; 3] = [FusedAct::Relu, FusedAct::LeakyRelu(0.2), FusedAct::Identity];
const ORDERS: [ActOrder; 2] = [ActOrder::AfterNorm, ActOrder::BeforeNorm];

#[test]
fn fused_norm_act_matches_naive_and_finite_differences() {
    for dims in [vec![3usize, 2, 5], vec![2, 3, 3, 4]] {
        let (c, s) = (dims[1], dims[2..].iter().product::<usize>());
        let n: usize = dims.iter().product();
        let xs: Vec<f64> = rnd(n, 11).iter().map(|v| 3.0 * v + 0.2).collect();
        let (pre, w, b, gy) = (rnd(c, 15), rnd(c, 12), rnd(c, 13), rnd(n, 14));
        for act in ACTS {
            for order in ORDERS {
                let what = format!("{act:?} {order:?} {dims:?}");
                let (x, pv, wv, bv) = (
                    var(&xs, &dims),
                    var(&pre, &[c]),
                    var(&w, &[c]),
                    var(&b, &[c]),
                );
                let out = batch_norm_act_train(
                    x.as_tensor(),
                    Some(pv.as_tensor()),
                    Some(wv.as_tensor()),
                    Some(bv.as_tensor()),
                    EPS,
                    act,
                    order,
                )
                .unwrap();
                let (y0, m0, v0) = naive(&xs, &pre, &w, &b, c, s, act, order);
                assert_close(&format!("{what} y"), &flat(&out.y), &y0, 1e-12);
                assert_close(&format!("{what} mean"), &flat(&out.mean), &m0, 1e-13);
                assert_close(&format!("{what} var"), &flat(&out.var), &v0, 1e-13);
                let g = grads(
                    &out.y,
                    &tensor(&gy, &dims),
                    &[
                        x.as_tensor(),
                        pv.as_tensor(),
                        wv.as_tensor(),
                        bv.as_tensor(),
                    ],
                );
                let dot = |v: &[f64]| v.iter().zip(&gy).map(|(p, q)| p * q).sum::<f64>();
                let f = |xs: &[f64], pre: &[f64], w: &[f64], b: &[f64]| {
                    dot(&naive(xs, pre, w, b, c, s, act, order).0)
                };
                check_fd(
                    &format!("{what} dx"),
                    &xs,
                    &g[0],
                    |v| f(v, &pre, &w, &b),
                    1e-6,
                );
                check_fd(
                    &format!("{what} dpre"),
                    &pre,
                    &g[1],
                    |v| f(&xs, v, &w, &b),
                    1e-6,
                );
                check_fd(
                    &format!("{what} dw"),
                    &w,
                    &g[2],
                    |v| f(&xs, &pre, v, &b),
                    1e-6,
                );
                check_fd(
                    &format!("{what} db"),
                    &b,
                    &g[3],
                    |v| f(&xs, &pre, &w, v),
                    1e-6,
                );
            }
        }
    }
}

#[test]
fn fused_norm_act_without_optional_operands_matches_naive() {
    let dims = [2usize, 3, 4, 3];
    let (c, s) = (3, 12);
    let n: usize = dims.iter().product();
    let xs = rnd(n, 41);
    let gy = rnd(n, 42);
    let (zeros, ones) = (vec![0.0; c], vec![1.0; c]);
    for order in ORDERS {
        let x = var(&xs, &dims);
        let out = batch_norm_act_train(x.as_tensor(), None, None, None, EPS, FusedAct::Relu, order)
            .unwrap();
        let f = |v: &[f64]| naive(v, &zeros, &ones, &zeros, c, s, FusedAct::Relu, order).0;
        assert_close("y (no operands)", &flat(&out.y), &f(&xs), 1e-12);
        let g = grads(&out.y, &tensor(&gy, &dims), &[x.as_tensor()]);
        let dot = |v: &[f64]| f(v).iter().zip(&gy).map(|(p, q)| p * q).sum::<f64>();
        check_fd("dx (no operands)", &xs, &g[0], dot, 1e-6);
    }
}

/// Values and every gradient of the fused op against the unfused composition it replaces.
fn compare_with_composition(dtype: DType, tol: f64) {
    let dims = [4usize, 5, 9, 7];
    let c = dims[1];
    let n: usize = dims.iter().product();
    let xs: Vec<f64> = rnd(n, 51).iter().map(|v| 2.0 * v + 0.3).collect();
    let (pre, w, b) = (rnd(c, 52), rnd(c, 53), rnd(c, 54));
    let gy = tensor(&rnd(n, 55), &dims);
    let dev = Device::Cpu;
    for act in ACTS {
        for order in ORDERS {
            let run = |fused: bool| {
                let (x, pv, wv, bv) = (
                    var_on(&xs, &dims, &dev, dtype),
                    var_on(&pre, &[c], &dev, dtype),
                    var_on(&w, &[c], &dev, dtype),
                    var_on(&b, &[c], &dev, dtype),
                );
                let f = if fused {
                    batch_norm_act_train
                } else {
                    batch_norm_act_train_composed
                };
                let out = f(
                    x.as_tensor(),
                    Some(pv.as_tensor()),
                    Some(wv.as_tensor()),
                    Some(bv.as_tensor()),
                    EPS,
                    act,
                    order,
                )
                .unwrap();
                let g = grads(
                    &out.y,
                    &gy,
                    &[
                        x.as_tensor(),
                        pv.as_tensor(),
                        wv.as_tensor(),
                        bv.as_tensor(),
                    ],
                );
                (vec![flat(&out.y), flat(&out.mean), flat(&out.var)], g)
            };
            let (fv, fg) = run(true);
            let (cv, cg) = run(false);
            let what = format!("{dtype:?} {act:?} {order:?}");
            for (k, name) in ["y", "mean", "var"].iter().enumerate() {
                assert_close(&format!("{what} {name}"), &fv[k], &cv[k], tol);
            }
            for (k, name) in ["dx", "dpre", "dw", "db"].iter().enumerate() {
                // The pre-bias gradient of AfterNorm is 0 up to rounding: compare on the
                // scale of the input gradient it sums.
                let scale = if *name == "dpre" && order == ActOrder::AfterNorm {
                    1e-3
                } else {
                    tol
                };
                assert_close(&format!("{what} {name}"), &fg[k], &cg[k], scale);
            }
        }
    }
}

#[test]
fn fused_norm_act_equals_the_unfused_composition_f64() {
    compare_with_composition(DType::F64, 1e-13);
}

#[test]
fn fused_norm_act_equals_the_unfused_composition_f32() {
    compare_with_composition(DType::F32, 2e-5);
}

#[test]
fn batch_norm_layer_fused_forward_updates_running_statistics_like_forward_t() {
    let dims = [3usize, 4, 5, 5];
    let n: usize = dims.iter().product();
    let xs: Vec<f64> = rnd(n, 61).iter().map(|v| v + 0.5).collect();
    let x = tensor(&xs, &dims);
    let pre = tensor(&rnd(4, 62), &[4]);
    let layer = |seed| {
        let store = ParamStore::with_dtype(seed, &Device::Cpu, DType::F64);
        let bn = BatchNorm::new(&store.root(), 4).unwrap();
        (store, bn)
    };
    let (s1, fused) = layer(1);
    let (s2, plain) = layer(1);
    let y1 = fused
        .forward_train_fused(&x, Some(&pre), FusedAct::Relu, ActOrder::AfterNorm)
        .unwrap();
    let biased = x
        .broadcast_add(&pre.reshape((1, 4, 1, 1)).unwrap())
        .unwrap();
    let y2 = plain.forward_t(&biased, true).unwrap().relu().unwrap();
    assert_close("layer y", &flat(&y1), &flat(&y2), 1e-13);
    for key in ["running_mean", "running_var"] {
        assert_close(
            key,
            &flat(s1.get(key).unwrap().as_tensor()),
            &flat(s2.get(key).unwrap().as_tensor()),
            1e-13,
        );
    }
    assert_eq!(fused.num_batches_tracked(), Some(1));
}

#[test]
fn fused_norm_act_rejects_bad_operands() {
    let x = tensor(&rnd(24, 71), &[2, 3, 4]);
    let bad = tensor(&[0.0, 1.0], &[2]);
    let err = batch_norm_act_train(
        &x,
        Some(&bad),
        None,
        None,
        EPS,
        FusedAct::Relu,
        ActOrder::AfterNorm,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("pre_bias of shape (3,)"), "{err}");
    let err = batch_norm_act_train(
        &x,
        None,
        None,
        None,
        EPS,
        FusedAct::LeakyRelu(f64::NAN),
        ActOrder::AfterNorm,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("slope must be finite"), "{err}");
    let one = tensor(&[1.0, 2.0, 3.0], &[1, 3, 1]);
    let err = batch_norm_act_train(
        &one,
        None,
        None,
        None,
        EPS,
        FusedAct::Relu,
        ActOrder::BeforeNorm,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("more than 1 value per channel"), "{err}");
    let err = batch_norm_act_train(
        &x,
        None,
        None,
        None,
        0.0,
        FusedAct::Identity,
        ActOrder::AfterNorm,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("eps"), "{err}");
}

/// `conv_batch_norm_act_train` (one node) and `conv` → `batch_norm_act_train` (two nodes):
/// values, statistics and every gradient.
fn conv_fused_vs_two_ops(dtype: DType, act: FusedAct, order: ActOrder) -> [Vec<Vec<f64>>; 2] {
    let spec = ConvSpec::uniform(2, 1, 1, 1);
    let (xd, wd) = ([2usize, 3, 6, 5], [4usize, 3, 3, 3]);
    let dev = Device::Cpu;
    let na = NormActSpec {
        eps: EPS,
        act,
        order,
    };
    let run = |fused: bool| {
        let x = var_on(&rnd(90 * 2, 81), &xd, &dev, dtype);
        let w = var_on(&rnd(108, 82), &wd, &dev, dtype);
        let vs: Vec<_> = (0..3)
            .map(|k| var_on(&rnd(4, 83 + k), &[4], &dev, dtype))
            .collect();
        let (b0, gw, gb) = (vs[0].as_tensor(), vs[1].as_tensor(), vs[2].as_tensor());
        let out = if fused {
            conv_batch_norm_act_train(
                x.as_tensor(),
                w.as_tensor(),
                Some(b0),
                &spec,
                Some(gw),
                Some(gb),
                &na,
            )
            .unwrap()
        } else {
            let u = conv(x.as_tensor(), w.as_tensor(), None, &spec).unwrap();
            batch_norm_act_train(&u, Some(b0), Some(gw), Some(gb), EPS, act, order).unwrap()
        };
        let g = tensor(&rnd(out.y.elem_count(), 86), out.y.dims());
        let gr = grads(&out.y, &g, &[x.as_tensor(), w.as_tensor(), b0, gw, gb]);
        let mut v = vec![flat(&out.y), flat(&out.mean), flat(&out.var)];
        v.extend(gr);
        v
    };
    [run(true), run(false)]
}

#[test]
fn conv_fused_norm_act_equals_conv_then_norm_act_exactly() {
    for dtype in [DType::F64, DType::F32] {
        for act in ACTS {
            for order in ORDERS {
                let [a, b] = conv_fused_vs_two_ops(dtype, act, order);
                assert_eq!(a, b, "{dtype:?} {act:?} {order:?}");
            }
        }
    }
}

#[test]
fn conv_fused_norm_act_gradients_match_finite_differences() {
    let spec = ConvSpec::uniform(1, 1, 1, 1);
    let (xd, wd) = ([3usize, 2, 5], [3usize, 2, 3]);
    let (xs, ws, pre) = (rnd(30, 91), rnd(18, 92), rnd(3, 93));
    let gy = rnd(45, 94);
    for order in ORDERS {
        let na = NormActSpec {
            eps: EPS,
            act: FusedAct::LeakyRelu(0.1),
            order,
        };
        let f = |x: &Tensor, w: &Tensor, b: &Tensor| {
            conv_batch_norm_act_train(x, w, Some(b), &spec, None, None, &na)
                .unwrap()
                .y
        };
        let (x, w, b) = (var(&xs, &xd), var(&ws, &wd), var(&pre, &[3]));
        let y = f(x.as_tensor(), w.as_tensor(), b.as_tensor());
        let g = grads(
            &y,
            &tensor(&gy, &[3, 3, 5]),
            &[x.as_tensor(), w.as_tensor(), b.as_tensor()],
        );
        let loss = |xs: &[f64], ws: &[f64], pre: &[f64]| {
            let y = f(&tensor(xs, &xd), &tensor(ws, &wd), &tensor(pre, &[3]));
            flat(&y).iter().zip(&gy).map(|(p, q)| p * q).sum::<f64>()
        };
        check_fd("conv-bn dx", &xs, &g[0], |v| loss(v, &ws, &pre), 1e-6);
        check_fd("conv-bn dw", &ws, &g[1], |v| loss(&xs, v, &pre), 1e-6);
        check_fd("conv-bn dbias", &pre, &g[2], |v| loss(&xs, &ws, v), 1e-6);
    }
}

#[test]
fn nan_inputs_propagate_like_the_unfused_composition() {
    // ReLU maps NaN to 0 (Candle's `max(z, 0)`), a leaky ReLU keeps it; gradients follow.
    let dims = [2usize, 2, 3, 3];
    let n: usize = dims.iter().product();
    let mut xs = rnd(n, 101);
    xs[4] = f64::NAN;
    let gy = tensor(&rnd(n, 102), &dims);
    let same = |a: &[f64], b: &[f64]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(p, q)| p == q || (p.is_nan() && q.is_nan()))
    };
    for act in ACTS {
        for order in ORDERS {
            let run = |fused: bool| {
                let x = var(&xs, &dims);
                let f = if fused {
                    batch_norm_act_train
                } else {
                    batch_norm_act_train_composed
                };
                let out = f(x.as_tensor(), None, None, None, EPS, act, order).unwrap();
                let g = grads(&out.y, &gy, &[x.as_tensor()]);
                (flat(&out.y), g[0].clone())
            };
            let ((fy, fg), (cy, cg)) = (run(true), run(false));
            assert!(same(&fy, &cy), "{act:?} {order:?} y: {fy:?} vs {cy:?}");
            assert!(same(&fg, &cg), "{act:?} {order:?} dx: {fg:?} vs {cg:?}");
        }
    }
}

#[test]
fn half_precision_inputs_run_in_f32_and_come_back_in_their_dtype() {
    let dims = [2usize, 3, 4, 4];
    let n: usize = dims.iter().product();
    let x32 = tensor(&rnd(n, 111), &dims).to_dtype(DType::F32).unwrap();
    let (pre, w) = (
        tensor(&rnd(3, 112), &[3]).to_dtype(DType::F32).unwrap(),
        tensor(&rnd(54, 113), &[3, 3, 3, 2])
            .to_dtype(DType::F32)
            .unwrap(),
    );
    let h = |t: &Tensor| t.to_dtype(DType::BF16).unwrap();
    let from_half = |t: &Tensor| {
        t.to_dtype(DType::BF16)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
    };
    let (act, order) = (FusedAct::Relu, ActOrder::AfterNorm);
    let out = batch_norm_act_train(&h(&x32), Some(&h(&pre)), None, None, EPS, act, order).unwrap();
    assert_eq!(out.y.dtype(), DType::BF16);
    let want = batch_norm_act_train(
        &from_half(&x32),
        Some(&from_half(&pre)),
        None,
        None,
        EPS,
        act,
        order,
    )
    .unwrap();
    assert_eq!(flat(&out.y), flat(&want.y.to_dtype(DType::BF16).unwrap()));
    let na = NormActSpec {
        eps: EPS,
        act,
        order,
    };
    let spec = ConvSpec::uniform(2, 1, 1, 1);
    let out = conv_batch_norm_act_train(&h(&x32), &h(&w), None, &spec, None, None, &na).unwrap();
    assert_eq!(out.y.dtype(), DType::BF16);
    let want = conv_batch_norm_act_train(
        &from_half(&x32),
        &from_half(&w),
        None,
        &spec,
        None,
        None,
        &na,
    )
    .unwrap();
    assert_eq!(flat(&out.y), flat(&want.y.to_dtype(DType::BF16).unwrap()));
}
