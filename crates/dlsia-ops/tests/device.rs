//! Every op on every device: the same checks run on the CPU and, when dlsia-ops is built with
//! feature `cuda`, on GPU 0 (`test_device!`). Each compares the device's forward and backward
//! results in f32 and f64 with naive f64 references, and checks that repeated runs are
//! bit-identical (deterministic reductions, the default).
//!
//! The geometries are chosen to reach every CUDA code path: direct kernels (few output
//! channels per group) and im2col + cuBLAS (many), the direct and the GEMM weight gradient,
//! strided / dilated / grouped / 1-D / 3-D convolutions, tiled and overlapping pooling.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use dlsia_ops::{
    batch_norm_train, channel_affine, conv, conv_transpose, max_pool, pad, test_device,
    upsample_nearest, ConvSpec, ConvTransposeSpec, PaddingMode,
};

/// Relative tolerance of a dtype against an f64 reference.
fn tol(dtype: DType) -> f64 {
    if dtype == DType::F64 {
        1e-12
    } else {
        2e-5
    }
}

fn dims(n: usize, c: usize, s: &[usize; 3], nd: usize) -> Vec<usize> {
    [vec![n, c], s[3 - nd..].to_vec()].concat()
}

/// `Σ y·gy` differentiated with respect to `vars`.
fn grads_of(y: &Tensor, gy: &[f64], vars: &[&Tensor]) -> Vec<Vec<f64>> {
    let g = tensor_on(gy, y.dims(), y.device(), y.dtype());
    let gs = (y * g).unwrap().sum_all().unwrap().backward().unwrap();
    vars.iter().map(|v| flat(gs.get(v).unwrap())).collect()
}

// ----------------------------------------------------------------------------- conv

fn conv_case(dev: &Device, name: &str, g: Geo, nd: usize) {
    let spec = ConvSpec {
        stride: g.stride[3 - nd..].to_vec(),
        padding: g.pad[3 - nd..].to_vec(),
        dilation: g.dil[3 - nd..].to_vec(),
        groups: g.groups,
        padding_mode: PaddingMode::Zeros,
    };
    let xd = dims(g.n, g.cin, &g.input, nd);
    let wd = dims(g.cout, g.cin / g.groups, &g.kernel, nd);
    let xs = rnd(xd.iter().product(), 1);
    let ws = rnd(wd.iter().product(), 2);
    let gys = rnd(g.n * g.cout * g.output().iter().product::<usize>(), 3);
    let (y_ref, gx_ref, gw_ref) = naive_conv(&g, &xs, &ws, Some(&gys));
    for dtype in [DType::F64, DType::F32] {
        let (x, w) = (var_on(&xs, &xd, dev, dtype), var_on(&ws, &wd, dev, dtype));
        let y = conv(x.as_tensor(), w.as_tensor(), None, &spec).unwrap();
        assert!(
            y.device().same_device(dev),
            "{name}: output left the device"
        );
        let t = tol(dtype);
        assert_close(&format!("{name} {dtype:?} y"), &flat(&y), &y_ref, t);
        let gr = grads_of(&y, &gys, &[x.as_tensor(), w.as_tensor()]);
        assert_close(&format!("{name} {dtype:?} dx"), &gr[0], &gx_ref, t);
        assert_close(&format!("{name} {dtype:?} dw"), &gr[1], &gw_ref, t);
        // Deterministic: a second run gives the same bits.
        let again = grads_of(&y, &gys, &[x.as_tensor(), w.as_tensor()]);
        assert_eq!(gr, again, "{name} {dtype:?}: gradients differ between runs");
    }
}

fn geo(
    n: usize,
    cin: usize,
    cout: usize,
    groups: usize,
    input: [usize; 3],
    kernel: [usize; 3],
) -> Geo {
    Geo {
        n,
        cin,
        cout,
        groups,
        input,
        kernel,
        stride: [1; 3],
        pad: [0; 3],
        dil: [1; 3],
    }
}

fn conv_on_device(dev: &Device) {
    // MSDNet layer: one output channel, dilation 3, "same" padding (direct kernels).
    let mut g = geo(2, 5, 1, 1, [1, 11, 9], [1, 3, 3]);
    g.pad = [0, 3, 3];
    g.dil = [1, 3, 3];
    conv_case(dev, "2d msd layer", g, 2);
    // Many output channels per group, stride 2, groups 2 (im2col + cuBLAS, GEMM weight grad).
    let mut g = geo(2, 6, 20, 2, [1, 9, 10], [1, 3, 3]);
    g.stride = [1, 2, 2];
    g.pad = [0, 1, 1];
    conv_case(dev, "2d gemm strided grouped", g, 2);
    // co·taps > 64 with co ≤ 8: direct forward and input gradient, GEMM weight gradient.
    let mut g = geo(1, 3, 8, 1, [1, 7, 8], [1, 3, 3]);
    g.pad = [0, 1, 1];
    conv_case(dev, "2d co 8", g, 2);
    // 3-D dilated, per-axis geometry.
    let mut g = geo(1, 3, 2, 1, [5, 6, 7], [3, 3, 2]);
    g.pad = [2, 1, 0];
    g.dil = [2, 1, 3];
    g.stride = [1, 2, 1];
    conv_case(dev, "3d dilated", g, 3);
    // 1-D, kernel 5, stride 3.
    let mut g = geo(3, 4, 10, 1, [1, 1, 23], [1, 1, 5]);
    g.stride = [1, 1, 3];
    g.pad = [0, 0, 2];
    conv_case(dev, "1d strided", g, 1);
    // Depthwise (one channel per group).
    let mut g = geo(2, 4, 4, 4, [1, 6, 6], [1, 3, 3]);
    g.pad = [0, 1, 1];
    conv_case(dev, "2d depthwise", g, 2);
}
test_device!(conv_on_device, conv_cpu, conv_cuda);

fn conv_transpose_on_device(dev: &Device) {
    // U-Net up-sampling (kernel = stride = 2) and a kernel-3 stride-2 one with output padding.
    for (name, cin, cout, t_in, k, s, p, op) in [
        (
            "k2 s2",
            12usize,
            10usize,
            [1usize, 4, 5],
            [1usize, 2, 2],
            [1usize, 2, 2],
            [0usize; 3],
            [0usize; 3],
        ),
        (
            "k3 s2 op1",
            3,
            4,
            [1, 5, 4],
            [1, 3, 3],
            [1, 2, 2],
            [0, 1, 1],
            [0, 1, 1],
        ),
        (
            "3d k2 s2",
            9,
            12,
            [2, 3, 2],
            [2, 2, 2],
            [2, 2, 2],
            [0; 3],
            [0; 3],
        ),
    ] {
        let nd = if t_in[0] > 1 || k[0] > 1 { 3 } else { 2 };
        let mut out = [1usize; 3];
        for i in 0..3 {
            out[i] = (t_in[i] - 1) * s[i] + (k[i] - 1) + op[i] + 1 - 2 * p[i];
        }
        let g = Geo {
            n: 2,
            cin: cout,
            cout: cin,
            groups: 1,
            input: out,
            kernel: k,
            stride: s,
            pad: p,
            dil: [1; 3],
        };
        let spec = ConvTransposeSpec {
            stride: s[3 - nd..].to_vec(),
            padding: p[3 - nd..].to_vec(),
            output_padding: op[3 - nd..].to_vec(),
            dilation: vec![1; nd],
            groups: 1,
        };
        let xd = dims(2, cin, &t_in, nd);
        let wd = dims(cin, cout, &k, nd);
        let xs = rnd(xd.iter().product(), 5);
        let ws = rnd(wd.iter().product(), 6);
        let gys = rnd(2 * cout * out.iter().product::<usize>(), 7);
        let (y_ref, gx_ref, gw_ref) = naive_conv_transpose(&g, &xs, &ws, Some(&gys));
        for dtype in [DType::F64, DType::F32] {
            let (x, w) = (var_on(&xs, &xd, dev, dtype), var_on(&ws, &wd, dev, dtype));
            let y = conv_transpose(x.as_tensor(), w.as_tensor(), None, &spec).unwrap();
            let t = tol(dtype);
            assert_close(&format!("convT {name} {dtype:?} y"), &flat(&y), &y_ref, t);
            let gr = grads_of(&y, &gys, &[x.as_tensor(), w.as_tensor()]);
            assert_close(&format!("convT {name} {dtype:?} dx"), &gr[0], &gx_ref, t);
            assert_close(&format!("convT {name} {dtype:?} dw"), &gr[1], &gw_ref, t);
        }
    }
}
test_device!(
    conv_transpose_on_device,
    conv_transpose_cpu,
    conv_transpose_cuda
);

// ----------------------------------------------------------------------------- pooling

/// Naive max pool: output and, for L = Σ y·gy, dL/dx (first maximum of each window wins).
fn naive_pool(
    x: &[f64],
    planes: usize,
    input: [usize; 3],
    k: [usize; 3],
    s: [usize; 3],
    p: [usize; 3],
    gy: &[f64],
) -> (Vec<f64>, Vec<f64>) {
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
        for o in 0..ov {
            let oi = [o / (out[1] * out[2]), (o / out[2]) % out[1], o % out[2]];
            let mut best = (f64::NEG_INFINITY, usize::MAX);
            for t in 0..k[0] * k[1] * k[2] {
                let ki = [t / (k[1] * k[2]), (t / k[2]) % k[1], t % k[2]];
                let q: Vec<isize> = (0..3)
                    .map(|i| (oi[i] * s[i] + ki[i]) as isize - p[i] as isize)
                    .collect();
                if (0..3).any(|i| q[i] < 0 || q[i] >= input[i] as isize) {
                    continue;
                }
                let xi =
                    pl * iv + (q[0] as usize * input[1] + q[1] as usize) * input[2] + q[2] as usize;
                if best.1 == usize::MAX || x[xi] > best.0 {
                    best = (x[xi], xi);
                }
            }
            y[pl * ov + o] = best.0;
            gx[best.1] += gy[pl * ov + o];
        }
    }
    (y, gx)
}

fn max_pool_on_device(dev: &Device) {
    for (name, nd, input, k, s, p) in [
        (
            "2d tiled",
            2usize,
            [1usize, 8, 6],
            [1usize, 2, 2],
            [1usize, 2, 2],
            [0usize; 3],
        ),
        (
            "2d overlapping",
            2,
            [1, 9, 7],
            [1, 3, 3],
            [1, 2, 2],
            [0, 1, 1],
        ),
        ("3d tiled", 3, [4, 6, 4], [2, 2, 2], [2, 2, 2], [0; 3]),
        (
            "3d overlapping",
            3,
            [5, 5, 6],
            [3, 2, 3],
            [1, 2, 2],
            [1, 1, 1],
        ),
        (
            "1d stride 1",
            1,
            [1, 1, 11],
            [1, 1, 4],
            [1, 1, 1],
            [0, 0, 2],
        ),
    ] {
        let (n, c) = (2, 3);
        let xd = dims(n, c, &input, nd);
        // Quantised values, so that windows hold ties (first maximum must win).
        let xs: Vec<f64> = rnd(xd.iter().product(), 8)
            .iter()
            .map(|v| (v * 4.0).round())
            .collect();
        let out: Vec<usize> = (0..3)
            .map(|i| (input[i] + 2 * p[i] - k[i]) / s[i] + 1)
            .collect();
        let gys = rnd(n * c * out.iter().product::<usize>(), 9);
        let (y_ref, gx_ref) = naive_pool(&xs, n * c, input, k, s, p, &gys);
        for dtype in [DType::F64, DType::F32] {
            let x = var_on(&xs, &xd, dev, dtype);
            let y = max_pool(x.as_tensor(), &k[3 - nd..], &s[3 - nd..], &p[3 - nd..]).unwrap();
            assert_eq!(flat(&y), y_ref, "{name} {dtype:?} forward");
            let gr = grads_of(&y, &gys, &[x.as_tensor()]);
            assert_close(&format!("{name} {dtype:?} dx"), &gr[0], &gx_ref, tol(dtype));
        }
    }
    // NaN propagates and receives the gradient (PyTorch's rule).
    let x = var_on(&[1.0, f64::NAN, 3.0, 2.0], &[1, 1, 4], dev, DType::F32);
    let y = max_pool(x.as_tensor(), &[4], &[4], &[0]).unwrap();
    assert!(flat(&y)[0].is_nan());
    let g = grads_of(&y, &[1.0], &[x.as_tensor()]);
    assert_eq!(g[0], [0.0, 1.0, 0.0, 0.0]);
}
test_device!(max_pool_on_device, max_pool_cpu, max_pool_cuda);

// ----------------------------------------------------------------------------- remaps

fn pad_and_upsample_on_device(dev: &Device) {
    let dims3 = [2usize, 2, 3, 4, 4];
    let pads = [(1usize, 2usize), (3, 0), (2, 2)];
    let xs = rnd(dims3.iter().product(), 10);
    let sp = &dims3[2..];
    let out: Vec<usize> = sp.iter().zip(&pads).map(|(n, (b, a))| n + b + a).collect();
    let (planes, iv, ov) = (
        4usize,
        sp.iter().product::<usize>(),
        out.iter().product::<usize>(),
    );
    let gys = rnd(planes * ov, 11);
    for mode in [
        PaddingMode::Zeros,
        PaddingMode::Reflect,
        PaddingMode::Replicate,
        PaddingMode::Symmetric,
    ] {
        let mut y_ref = vec![0.0; planes * ov];
        let mut gx_ref = vec![0.0; xs.len()];
        for pl in 0..planes {
            for o in 0..ov {
                let idx = [o / (out[1] * out[2]), (o / out[2]) % out[1], o % out[2]];
                let src: Option<Vec<usize>> = (0..3)
                    .map(|a| mode.source_index(idx[a] as isize - pads[a].0 as isize, sp[a]))
                    .collect();
                if let Some(q) = src {
                    let xi = pl * iv + (q[0] * sp[1] + q[1]) * sp[2] + q[2];
                    y_ref[pl * ov + o] = xs[xi];
                    gx_ref[xi] += gys[pl * ov + o];
                }
            }
        }
        for dtype in [DType::F64, DType::F32] {
            let x = var_on(&xs, &dims3, dev, dtype);
            let y = pad(x.as_tensor(), &pads, mode).unwrap();
            assert_close(
                &format!("pad {mode:?} {dtype:?}"),
                &flat(&y),
                &y_ref,
                tol(dtype),
            );
            let gr = grads_of(&y, &gys, &[x.as_tensor()]);
            assert_close(
                &format!("pad {mode:?} {dtype:?} dx"),
                &gr[0],
                &gx_ref,
                tol(dtype),
            );
        }
    }
    // Nearest resize 3 → 7 (src = floor(dst·3/7)): gradients sum over the copies.
    let x = var_on(&[0.0, 1.0, 2.0], &[1, 1, 3], dev, DType::F32);
    let y = upsample_nearest(x.as_tensor(), &[7]).unwrap();
    assert_eq!(flat(&y), [0., 0., 0., 1., 1., 2., 2.]);
    let g = grads_of(&y, &[1., 2., 3., 4., 5., 6., 7.], &[x.as_tensor()]);
    assert_eq!(g[0], [6., 9., 13.]);
}
test_device!(pad_and_upsample_on_device, remap_cpu, remap_cuda);

// ----------------------------------------------------------------------------- channels

fn channel_ops_on_device(dev: &Device) {
    let (n, c, s) = (3usize, 4usize, 37usize);
    let xs = rnd(n * c * s, 12);
    let (a_s, b_s, gys) = (rnd(c, 13), rnd(c, 14), rnd(n * c * s, 15));
    let ch = |i: usize| (i / s) % c;
    let y_ref: Vec<f64> = xs
        .iter()
        .enumerate()
        .map(|(i, v)| v * a_s[ch(i)] + b_s[ch(i)])
        .collect();
    let mut ga_ref = vec![0.0; c];
    let mut gb_ref = vec![0.0; c];
    for i in 0..xs.len() {
        ga_ref[ch(i)] += gys[i] * xs[i];
        gb_ref[ch(i)] += gys[i];
    }
    let gx_ref: Vec<f64> = gys
        .iter()
        .enumerate()
        .map(|(i, g)| g * a_s[ch(i)])
        .collect();
    for dtype in [DType::F64, DType::F32] {
        let t = tol(dtype) * 10.0;
        let x = var_on(&xs, &[n, c, s], dev, dtype);
        let a = var_on(&a_s, &[c], dev, dtype);
        let b = var_on(&b_s, &[c], dev, dtype);
        let y = channel_affine(x.as_tensor(), Some(a.as_tensor()), Some(b.as_tensor())).unwrap();
        assert_close(&format!("affine {dtype:?}"), &flat(&y), &y_ref, t);
        let gr = grads_of(&y, &gys, &[x.as_tensor(), a.as_tensor(), b.as_tensor()]);
        assert_close(&format!("affine {dtype:?} dx"), &gr[0], &gx_ref, t);
        assert_close(&format!("affine {dtype:?} da"), &gr[1], &ga_ref, t);
        assert_close(&format!("affine {dtype:?} db"), &gr[2], &gb_ref, t);

        // Batch norm: values, statistics, and the input gradient against finite differences
        // of an f64 reference.
        let eps = 1e-5;
        let out =
            batch_norm_train(x.as_tensor(), Some(a.as_tensor()), Some(b.as_tensor()), eps).unwrap();
        let bn = |xv: &[f64]| -> (Vec<f64>, Vec<f64>, Vec<f64>) {
            let m = (n * s) as f64;
            let mut mean = vec![0.0; c];
            for (i, v) in xv.iter().enumerate() {
                mean[ch(i)] += v / m;
            }
            let mut var = vec![0.0; c];
            for (i, v) in xv.iter().enumerate() {
                var[ch(i)] += (v - mean[ch(i)]).powi(2) / m;
            }
            let y = xv
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    (v - mean[ch(i)]) / (var[ch(i)] + eps).sqrt() * a_s[ch(i)] + b_s[ch(i)]
                })
                .collect();
            (y, mean, var)
        };
        let (bn_y, bn_mean, bn_var) = bn(&xs);
        assert_close(&format!("bn {dtype:?} y"), &flat(&out.y), &bn_y, t * 10.0);
        assert_close(&format!("bn {dtype:?} mean"), &flat(&out.mean), &bn_mean, t);
        assert_close(&format!("bn {dtype:?} var"), &flat(&out.var), &bn_var, t);
        let gr = grads_of(&out.y, &gys, &[x.as_tensor()]);
        if dtype == DType::F64 {
            let loss = |xv: &[f64]| -> f64 { bn(xv).0.iter().zip(&gys).map(|(p, q)| p * q).sum() };
            check_fd("bn dx", &xs, &gr[0], loss, 1e-6);
        }
    }
}
test_device!(channel_ops_on_device, channel_cpu, channel_cuda);

// ----------------------------------------------------------------------------- determinism

fn large_reductions_are_reproducible(dev: &Device) {
    // Enough positions for many partial-sum chunks in the weight gradient and channel sums.
    let xd = [2usize, 6, 96, 96];
    let xs = rnd(xd.iter().product(), 16);
    let ws = rnd(6 * 9, 17);
    let x = var_on(&xs, &xd, dev, DType::F32);
    let w = var_on(&ws, &[1, 6, 3, 3], dev, DType::F32);
    let spec = ConvSpec::uniform(2, 1, 2, 2);
    let run = || {
        let y = conv(x.as_tensor(), w.as_tensor(), None, &spec).unwrap();
        let bn = batch_norm_train(&y, None, None, 1e-5).unwrap();
        let gs = bn.y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        (
            flat(&bn.y),
            flat(gs.get(x.as_tensor()).unwrap()),
            flat(gs.get(w.as_tensor()).unwrap()),
        )
    };
    let first = run();
    for _ in 0..3 {
        assert!(run() == first, "results differ between identical runs");
    }
    // The weight gradient is also right: compare with the f64 reference.
    let g = Geo {
        n: 2,
        cin: 6,
        cout: 1,
        groups: 1,
        input: [1, 96, 96],
        kernel: [1, 3, 3],
        stride: [1; 3],
        pad: [0, 2, 2],
        dil: [1, 2, 2],
    };
    let y64 = naive_conv(&g, &xs, &ws, None).0;
    let y = conv(x.as_tensor(), w.as_tensor(), None, &spec).unwrap();
    assert_close("large conv forward", &flat(&y), &y64, 1e-5);
}
test_device!(
    large_reductions_are_reproducible,
    reproducible_cpu,
    reproducible_cuda
);
