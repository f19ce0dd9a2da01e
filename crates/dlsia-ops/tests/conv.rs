//! `conv` and `conv_transpose` against naive f64 loops, exact gradients and finite differences.
#![allow(
    clippy::too_many_arguments,
    clippy::needless_range_loop,
    clippy::type_complexity
)]

mod common;

use candle_core::{DType, Tensor};
use common::*;
use dlsia_ops::{conv, conv_transpose, ConvSpec, ConvTransposeSpec, PaddingMode};

fn dims(n: usize, c: usize, s: &[usize; 3], nd: usize) -> Vec<usize> {
    [vec![n, c], s[3 - nd..].to_vec()].concat()
}

fn spec_of(g: &Geo, nd: usize) -> ConvSpec {
    ConvSpec {
        stride: g.stride[3 - nd..].to_vec(),
        padding: g.pad[3 - nd..].to_vec(),
        dilation: g.dil[3 - nd..].to_vec(),
        groups: g.groups,
        padding_mode: PaddingMode::Zeros,
    }
}

/// Forward, exact gradients (incl. bias), finite differences and f32 for one geometry.
fn conv_case(name: &str, g: Geo, nd: usize) {
    let spec = spec_of(&g, nd);
    let xd = dims(g.n, g.cin, &g.input, nd);
    let wd = dims(g.cout, g.cin / g.groups, &g.kernel, nd);
    let yd = dims(g.n, g.cout, &g.output(), nd);
    let xs = rnd(xd.iter().product(), 1);
    let ws = rnd(wd.iter().product(), 2);
    let gys = rnd(yd.iter().product(), 3);
    let bs = rnd(g.cout, 4);
    let (mut y_ref, gx_ref, gw_ref) = naive_conv(&g, &xs, &ws, Some(&gys));
    let plane: usize = g.output().iter().product();
    for (i, v) in y_ref.iter_mut().enumerate() {
        *v += bs[(i / plane) % g.cout];
    }
    let mut gb_ref = vec![0.0; g.cout];
    for (i, v) in gys.iter().enumerate() {
        gb_ref[(i / plane) % g.cout] += v;
    }

    let (x, w, b) = (var(&xs, &xd), var(&ws, &wd), var(&bs, &[g.cout]));
    let y = conv(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()), &spec).unwrap();
    assert_eq!(y.dims(), &yd[..], "{name}: output shape");
    assert_close(&format!("{name} forward"), &flat(&y), &y_ref, 1e-12);
    let gy = tensor(&gys, &yd);
    let grads = (&y * &gy).unwrap().sum_all().unwrap().backward().unwrap();
    let gx = flat(grads.get(x.as_tensor()).unwrap());
    let gw = flat(grads.get(w.as_tensor()).unwrap());
    assert_close(&format!("{name} dx"), &gx, &gx_ref, 1e-12);
    assert_close(&format!("{name} dw"), &gw, &gw_ref, 1e-12);
    assert_close(
        &format!("{name} db"),
        &flat(grads.get(b.as_tensor()).unwrap()),
        &gb_ref,
        1e-12,
    );

    let loss_x = |xv: &[f64]| -> f64 {
        let y = conv(&tensor(xv, &xd), w.as_tensor(), None, &spec).unwrap();
        flat(&y).iter().zip(&gys).map(|(a, b)| a * b).sum()
    };
    check_fd(&format!("{name} dx"), &xs, &gx, loss_x, 1e-6);
    let loss_w = |wv: &[f64]| -> f64 {
        let y = conv(x.as_tensor(), &tensor(wv, &wd), None, &spec).unwrap();
        flat(&y).iter().zip(&gys).map(|(a, b)| a * b).sum()
    };
    check_fd(&format!("{name} dw"), &ws, &gw, loss_w, 1e-6);

    // f32 path against the f64 reference.
    let x32 = candle_core::Var::from_tensor(&x.as_tensor().to_dtype(DType::F32).unwrap()).unwrap();
    let w32 = candle_core::Var::from_tensor(&w.as_tensor().to_dtype(DType::F32).unwrap()).unwrap();
    let y32 = conv(x32.as_tensor(), w32.as_tensor(), None, &spec).unwrap();
    let (y_nb, _, _) = naive_conv(&g, &xs, &ws, None);
    assert_close(&format!("{name} f32 forward"), &flat(&y32), &y_nb, 1e-5);
    let gr = (&y32 * gy.to_dtype(DType::F32).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(
        &format!("{name} f32 dx"),
        &flat(gr.get(x32.as_tensor()).unwrap()),
        &gx_ref,
        1e-5,
    );
    assert_close(
        &format!("{name} f32 dw"),
        &flat(gr.get(w32.as_tensor()).unwrap()),
        &gw_ref,
        1e-5,
    );
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

#[test]
fn conv2d_mixed_geometry_per_axis() {
    let mut g = geo(2, 4, 6, 2, [1, 13, 11], [1, 3, 3]);
    g.pad = [0, 1, 2];
    g.stride = [1, 1, 2];
    g.dil = [1, 2, 1];
    conv_case("2d groups=2 pad(1,2) stride(1,2) dil(2,1)", g, 2);
}

#[test]
fn conv2d_common_shapes() {
    let mut g = geo(2, 3, 5, 1, [1, 9, 10], [1, 3, 3]);
    g.pad = [0, 1, 1];
    conv_case("3x3 pad 1", g.clone(), 2);
    g.dil = [1, 3, 3];
    g.pad = [0, 3, 3];
    conv_case("3x3 dil 3 pad 3", g.clone(), 2);
    let mut g = geo(1, 2, 3, 1, [1, 12, 7], [1, 5, 2]);
    g.pad = [0, 2, 0];
    conv_case("non-square kernel 5x2", g, 2);
}

#[test]
fn conv2d_non_square_stride2_backward_regression() {
    // Candle 0.11's conv2d backward fails with a shape mismatch on these (H and W need
    // different output padding).
    for (h, w) in [(9, 12), (10, 9)] {
        let mut g = geo(1, 2, 3, 1, [1, h, w], [1, 3, 3]);
        g.pad = [0, 1, 1];
        g.stride = [1, 2, 2];
        conv_case(&format!("stride 2 on {h}x{w}"), g, 2);
    }
    let mut g = geo(2, 3, 2, 1, [1, 11, 10], [1, 3, 3]);
    g.stride = [1, 3, 3];
    conv_case("stride 3 valid", g, 2);
}

#[test]
fn conv2d_depthwise_pointwise_and_few_outputs() {
    let mut g = geo(2, 4, 8, 4, [1, 9, 9], [1, 3, 3]);
    g.pad = [0, 1, 1];
    conv_case("depthwise x2", g, 2);
    conv_case("1x1", geo(2, 5, 3, 1, [1, 7, 6], [1, 1, 1]), 2);
    let mut g = geo(1, 5, 3, 1, [1, 7, 6], [1, 1, 1]);
    g.stride = [1, 2, 2];
    conv_case("1x1 stride 2", g, 2);
    let mut g = geo(2, 20, 1, 1, [1, 17, 19], [1, 3, 3]);
    g.dil = [1, 4, 4];
    g.pad = [0, 4, 4];
    conv_case("MSD pattern 20->1 dil 4", g, 2);
    let mut g = geo(1, 7, 3, 1, [1, 40, 45], [1, 3, 3]);
    g.dil = [1, 9, 2];
    g.pad = [0, 9, 2];
    conv_case("7->3 dil (9,2) many tiles", g, 2);
}

#[test]
fn conv_patchify_kernel_equals_stride() {
    // Non-overlapping windows: the input gradient takes the depth-to-space path.
    let mut g = geo(2, 4, 6, 2, [1, 9, 11], [1, 2, 2]);
    g.stride = [1, 2, 2];
    conv_case("2d k2 s2 groups 2 (odd sizes)", g, 2);
    let mut g = geo(1, 3, 2, 1, [5, 6, 7], [2, 3, 2]);
    g.stride = [2, 3, 2];
    conv_case("3d k(2,3,2) = stride", g, 3);
}

#[test]
fn conv_wide_rows_exercise_every_register_block() {
    // Output-channel counts 1..=11 cover every block size of the f32 direct kernels (6 + r),
    // rows of 70 columns cover the wide, narrow and masked column tiles.
    for (co, ci) in [(1, 3), (2, 2), (3, 4), (5, 2), (7, 3), (11, 2)] {
        let mut g = geo(2, ci, co, 1, [1, 5, 70], [1, 3, 5]);
        g.pad = [0, 1, 3];
        g.dil = [1, 1, 2];
        conv_case(&format!("wide rows {ci}->{co}"), g, 2);
    }
    let mut g = geo(1, 2, 9, 1, [3, 4, 37], [2, 3, 3]);
    g.pad = [1, 1, 1];
    g.dil = [2, 1, 1];
    conv_case("3d wide rows 2->9", g, 3);
    // Kernel wider than the row's interior: every column is a border column.
    let mut g = geo(1, 2, 3, 1, [1, 4, 6], [1, 3, 5]);
    g.pad = [0, 1, 4];
    g.dil = [1, 1, 2];
    conv_case("all-border row", g, 2);
}

#[test]
fn conv3d_per_axis_geometry() {
    let mut g = geo(2, 3, 4, 1, [7, 6, 5], [3, 2, 3]);
    g.stride = [2, 1, 1];
    g.pad = [1, 0, 2];
    g.dil = [1, 2, 1];
    conv_case("3d mixed", g, 3);
    let mut g = geo(1, 4, 4, 2, [5, 6, 7], [3, 3, 3]);
    g.pad = [1, 1, 1];
    g.stride = [2, 2, 2];
    conv_case("3d stride 2 groups 2", g, 3);
    let mut g = geo(1, 6, 2, 1, [6, 7, 8], [3, 3, 3]);
    g.pad = [2, 2, 2];
    g.dil = [2, 2, 2];
    conv_case("3d dil 2 few outputs", g, 3);
}

#[test]
fn conv1d() {
    let mut g = geo(3, 2, 4, 1, [1, 1, 20], [1, 1, 3]);
    g.pad = [0, 0, 3];
    g.dil = [1, 1, 3];
    conv_case("1d dil 3", g.clone(), 1);
    g.stride = [1, 1, 2];
    conv_case("1d dil 3 stride 2", g, 1);
}

#[test]
fn conv_padding_modes_match_explicit_padding() {
    use dlsia_ops::pad;
    for mode in [
        PaddingMode::Reflect,
        PaddingMode::Replicate,
        PaddingMode::Symmetric,
    ] {
        for nd in [2usize, 3] {
            let (xd, wd): (Vec<usize>, Vec<usize>) = if nd == 2 {
                (vec![2, 3, 6, 7], vec![2, 3, 3, 3])
            } else {
                (vec![1, 2, 4, 5, 6], vec![3, 2, 3, 3, 3])
            };
            let xs = rnd(xd.iter().product(), 5);
            let ws = rnd(wd.iter().product(), 6);
            let spec = ConvSpec::uniform(nd, 1, 2, 2).with_padding_mode(mode);
            let x = var(&xs, &xd);
            let w = tensor(&ws, &wd);
            let y = conv(x.as_tensor(), &w, None, &spec).unwrap();
            // Reference: explicit numpy-rule padding by index, then a naive valid conv.
            let sp: Vec<usize> = xd[2..].to_vec();
            let sp3 = {
                let mut s = [1usize; 3];
                s[3 - nd..].copy_from_slice(&sp);
                s
            };
            let pd = [if nd == 3 { 2 } else { 0 }, 2, 2];
            let padded: [usize; 3] = [sp3[0] + 2 * pd[0], sp3[1] + 2 * pd[1], sp3[2] + 2 * pd[2]];
            let planes = xd[0] * xd[1];
            let mut xp = vec![0.0; planes * padded.iter().product::<usize>()];
            for p in 0..planes {
                for d in 0..padded[0] {
                    for h in 0..padded[1] {
                        for w_ in 0..padded[2] {
                            let s = [
                                mode.source_index(d as isize - pd[0] as isize, sp3[0])
                                    .unwrap(),
                                mode.source_index(h as isize - pd[1] as isize, sp3[1])
                                    .unwrap(),
                                mode.source_index(w_ as isize - pd[2] as isize, sp3[2])
                                    .unwrap(),
                            ];
                            xp[((p * padded[0] + d) * padded[1] + h) * padded[2] + w_] =
                                xs[((p * sp3[0] + s[0]) * sp3[1] + s[1]) * sp3[2] + s[2]];
                        }
                    }
                }
            }
            let mut k3 = [1usize; 3];
            k3[3 - nd..].copy_from_slice(&wd[2..]);
            let mut dil = [1usize; 3];
            for d in dil.iter_mut().skip(3 - nd) {
                *d = 2;
            }
            let g = Geo {
                n: xd[0],
                cin: xd[1],
                cout: wd[0],
                groups: 1,
                input: padded,
                kernel: k3,
                stride: [1; 3],
                pad: [0; 3],
                dil,
            };
            let (y_ref, _, _) = naive_conv(&g, &xp, &ws, None);
            assert_close(&format!("{mode:?} {nd}d forward"), &flat(&y), &y_ref, 1e-12);
            // Gradient through the padding: finite differences.
            let gys = rnd(y.elem_count(), 7);
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
            let loss = |xv: &[f64]| -> f64 {
                let y = conv(&tensor(xv, &xd), &w, None, &spec).unwrap();
                flat(&y).iter().zip(&gys).map(|(a, b)| a * b).sum()
            };
            check_fd(&format!("{mode:?} {nd}d dx"), &xs, &gx, loss, 1e-6);
            let _ = pad;
        }
    }
}

#[test]
fn conv_rejects_invalid_arguments() {
    let x = tensor(&rnd(2 * 4 * 5 * 5, 1), &[2, 4, 5, 5]);
    let w = tensor(&rnd(6 * 4 * 3 * 3, 2), &[6, 4, 3, 3]);
    let s = ConvSpec::uniform(2, 1, 1, 1);
    let err = |r: dlsia_ops::Result<Tensor>| r.unwrap_err().to_string();
    // wrong rank
    let e = err(conv(&x.flatten_from(2).unwrap(), &w, None, &s));
    assert!(e.contains("rank 4"), "{e}");
    // channel mismatch
    let w3 = tensor(&rnd(6 * 3 * 9, 2), &[6, 3, 3, 3]);
    let e = err(conv(&x, &w3, None, &s));
    assert!(e.contains("4 channels") && e.contains("expects 3"), "{e}");
    // groups not dividing
    let e = err(conv(&x, &w, None, &s.clone().with_groups(3)));
    assert!(e.contains("divisible by groups = 3"), "{e}");
    // kernel larger than padded input
    let e = err(conv(&x, &w, None, &ConvSpec::uniform(2, 1, 0, 3)));
    assert!(
        e.contains("kernel extent 7") && e.contains("padded input length 5"),
        "{e}"
    );
    // zero stride / zero dilation / zero groups
    assert!(err(conv(&x, &w, None, &ConvSpec::uniform(2, 0, 1, 1))).contains("stride"));
    assert!(err(conv(&x, &w, None, &ConvSpec::uniform(2, 1, 1, 0))).contains("dilation"));
    assert!(err(conv(&x, &w, None, &s.clone().with_groups(0))).contains("groups"));
    // spec with the wrong number of axes / inconsistent lists
    assert!(err(conv(&x, &w, None, &ConvSpec::uniform(3, 1, 1, 1))).contains("rank 5"));
    let mut bad = s.clone();
    bad.padding = vec![1];
    assert!(err(conv(&x, &w, None, &bad)).contains("padding has 1 entries"));
    // reflect padding larger than the axis allows (dilated conv on a small image)
    let e = err(conv(
        &x,
        &w,
        None,
        &ConvSpec::uniform(2, 1, 5, 5).with_padding_mode(PaddingMode::Reflect),
    ));
    assert!(
        e.contains("reflect padding 5") && e.contains("at most 4"),
        "{e}"
    );
    // bias of the wrong length, wrong dtype
    let e = err(conv(&x, &w, Some(&tensor(&[0.0; 5], &[5])), &s));
    assert!(e.contains("bias"), "{e}");
    let e = err(conv(&x.to_dtype(DType::F32).unwrap(), &w, None, &s));
    assert!(e.contains("dtypes differ"), "{e}");
    let e = err(conv(
        &x.to_dtype(DType::U8).unwrap(),
        &w.to_dtype(DType::U8).unwrap(),
        None,
        &s,
    ));
    assert!(e.contains("unsupported dtype"), "{e}");
}

#[test]
fn conv_accepts_non_contiguous_input() {
    let xs = rnd(2 * 3 * 6 * 5, 8);
    let x = tensor(&xs, &[2, 3, 6, 5]);
    let xt = x.transpose(2, 3).unwrap(); // (2, 3, 5, 6), strided
    assert!(!xt.is_contiguous());
    let w = tensor(&rnd(4 * 3 * 9, 9), &[4, 3, 3, 3]);
    let s = ConvSpec::uniform(2, 1, 1, 1);
    let a = conv(&xt, &w, None, &s).unwrap();
    let b = conv(&xt.contiguous().unwrap(), &w, None, &s).unwrap();
    assert_eq!(flat(&a), flat(&b));
}

// ---------------------------------------------------------------- transposed convolution

/// `t_in`: transposed input grid; returns the conv geometry it transposes.
fn convt_case(
    name: &str,
    nd: usize,
    n: usize,
    cin: usize,
    cout: usize,
    groups: usize,
    t_in: [usize; 3],
    k: [usize; 3],
    s: [usize; 3],
    p: [usize; 3],
    op: [usize; 3],
    d: [usize; 3],
) {
    let mut out = [1usize; 3];
    for i in 0..3 {
        out[i] = (t_in[i] - 1) * s[i] + d[i] * (k[i] - 1) + op[i] + 1 - 2 * p[i];
    }
    let g = Geo {
        n,
        cin: cout,
        cout: cin,
        groups,
        input: out,
        kernel: k,
        stride: s,
        pad: p,
        dil: d,
    };
    // The naive conv's output grid must equal t_in (true unless output_padding ≥ stride).
    let spec = ConvTransposeSpec {
        stride: s[3 - nd..].to_vec(),
        padding: p[3 - nd..].to_vec(),
        output_padding: op[3 - nd..].to_vec(),
        dilation: d[3 - nd..].to_vec(),
        groups,
    };
    let xd = dims(n, cin, &t_in, nd);
    let wd = dims(cin, cout / groups, &k, nd);
    let yd = dims(n, cout, &out, nd);
    let xs = rnd(xd.iter().product(), 11);
    let ws = rnd(wd.iter().product(), 12);
    let gys = rnd(yd.iter().product(), 13);
    // Reference by explicit scatter (independent of the conv-geometry trick).
    let mut y_ref = vec![0.0; yd.iter().product()];
    let mut gx_ref = vec![0.0; xs.len()];
    let mut gw_ref = vec![0.0; ws.len()];
    let (cig, cog) = (cin / groups, cout / groups);
    let kv = k[0] * k[1] * k[2];
    for b in 0..n {
        for ci in 0..cin {
            let gr = ci / cig;
            for i0 in 0..t_in[0] {
                for i1 in 0..t_in[1] {
                    for i2 in 0..t_in[2] {
                        let xi = (((b * cin + ci) * t_in[0] + i0) * t_in[1] + i1) * t_in[2] + i2;
                        for o in 0..cog {
                            let co = gr * cog + o;
                            for k0 in 0..k[0] {
                                for k1 in 0..k[1] {
                                    for k2 in 0..k[2] {
                                        let q = [
                                            (i0 * s[0] + k0 * d[0]) as isize - p[0] as isize,
                                            (i1 * s[1] + k1 * d[1]) as isize - p[1] as isize,
                                            (i2 * s[2] + k2 * d[2]) as isize - p[2] as isize,
                                        ];
                                        if (0..3).any(|a| q[a] < 0 || q[a] >= out[a] as isize) {
                                            continue;
                                        }
                                        let yi = (((b * cout + co) * out[0] + q[0] as usize)
                                            * out[1]
                                            + q[1] as usize)
                                            * out[2]
                                            + q[2] as usize;
                                        let wi = (ci * cog + o) * kv + (k0 * k[1] + k1) * k[2] + k2;
                                        y_ref[yi] += xs[xi] * ws[wi];
                                        gx_ref[xi] += gys[yi] * ws[wi];
                                        gw_ref[wi] += gys[yi] * xs[xi];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let _ = &g;
    let (x, w) = (var(&xs, &xd), var(&ws, &wd));
    let y = conv_transpose(x.as_tensor(), w.as_tensor(), None, &spec).unwrap();
    assert_eq!(y.dims(), &yd[..], "{name}: output shape");
    assert_close(&format!("{name} forward"), &flat(&y), &y_ref, 1e-12);
    let gy = tensor(&gys, &yd);
    let grads = (&y * &gy).unwrap().sum_all().unwrap().backward().unwrap();
    let gx = flat(grads.get(x.as_tensor()).unwrap());
    let gw = flat(grads.get(w.as_tensor()).unwrap());
    assert_close(&format!("{name} dx"), &gx, &gx_ref, 1e-12);
    assert_close(&format!("{name} dw"), &gw, &gw_ref, 1e-12);
    let loss_w = |wv: &[f64]| -> f64 {
        let y = conv_transpose(x.as_tensor(), &tensor(wv, &wd), None, &spec).unwrap();
        flat(&y).iter().zip(&gys).map(|(a, b)| a * b).sum()
    };
    check_fd(&format!("{name} dw"), &ws, &gw, loss_w, 1e-6);
    let loss_x = |xv: &[f64]| -> f64 {
        let y = conv_transpose(&tensor(xv, &xd), w.as_tensor(), None, &spec).unwrap();
        flat(&y).iter().zip(&gys).map(|(a, b)| a * b).sum()
    };
    check_fd(&format!("{name} dx"), &xs, &gx, loss_x, 1e-6);
}

#[test]
fn conv_transpose_2d() {
    convt_case(
        "k2 s2 (U-Net up)",
        2,
        2,
        4,
        3,
        1,
        [1, 6, 7],
        [1, 2, 2],
        [1, 2, 2],
        [0; 3],
        [0; 3],
        [1; 3],
    );
    convt_case(
        "k3 s2 p1 op(1,0) per axis",
        2,
        2,
        4,
        3,
        1,
        [1, 5, 6],
        [1, 3, 3],
        [1, 2, 2],
        [0, 1, 1],
        [0, 1, 0],
        [1; 3],
    );
    convt_case(
        "k3 s1 p2 dil2",
        2,
        1,
        3,
        2,
        1,
        [1, 7, 7],
        [1, 3, 3],
        [1; 3],
        [0, 2, 2],
        [0; 3],
        [1, 2, 2],
    );
    convt_case(
        "groups 2 stride (3,2)",
        2,
        2,
        4,
        6,
        2,
        [1, 4, 5],
        [1, 3, 2],
        [1, 3, 2],
        [0, 1, 0],
        [0, 2, 1],
        [1; 3],
    );
    convt_case(
        "output_padding ≥ stride (dil 2)",
        2,
        1,
        2,
        2,
        1,
        [1, 5, 5],
        [1, 3, 3],
        [1; 3],
        [0; 3],
        [0, 1, 1],
        [1, 2, 2],
    );
}

#[test]
fn conv_transpose_3d_and_1d() {
    convt_case(
        "3d k2 s2",
        3,
        2,
        3,
        2,
        1,
        [3, 4, 5],
        [2, 2, 2],
        [2, 2, 2],
        [0; 3],
        [0; 3],
        [1; 3],
    );
    convt_case(
        "3d k3 s2 p1 op(1,0,1)",
        3,
        1,
        2,
        3,
        1,
        [3, 3, 4],
        [3, 3, 3],
        [2, 2, 2],
        [1, 1, 1],
        [1, 0, 1],
        [1; 3],
    );
    convt_case(
        "1d k4 s3",
        1,
        2,
        2,
        3,
        1,
        [1, 1, 6],
        [1, 1, 4],
        [1, 1, 3],
        [0, 0, 1],
        [0, 0, 2],
        [1; 3],
    );
}

#[test]
fn conv_transpose_rejects_invalid_arguments() {
    let x = tensor(&rnd(4 * 3 * 3, 1), &[1, 4, 3, 3]);
    let w = tensor(&rnd(4 * 2 * 4, 2), &[4, 2, 2, 2]);
    let err = |r: dlsia_ops::Result<Tensor>| r.unwrap_err().to_string();
    let e = err(conv_transpose(
        &x,
        &w,
        None,
        &ConvTransposeSpec::uniform(2, 2, 0, 2, 1),
    ));
    assert!(e.contains("output_padding 2"), "{e}");
    let w5 = tensor(&rnd(5 * 2 * 4, 2), &[5, 2, 2, 2]);
    let e = err(conv_transpose(
        &x,
        &w5,
        None,
        &ConvTransposeSpec::uniform(2, 2, 0, 0, 1),
    ));
    assert!(e.contains("(in_channels, out_channels/groups"), "{e}");
    let e = err(conv_transpose(
        &x,
        &w,
        None,
        &ConvTransposeSpec::uniform(2, 1, 3, 0, 1),
    ));
    assert!(e.contains("trims the whole output"), "{e}");
    let e = err(conv_transpose(
        &x,
        &w,
        None,
        &ConvTransposeSpec::uniform(2, 2, 0, 0, 1).with_groups(3),
    ));
    assert!(e.contains("divisible by groups = 3"), "{e}");
    let e = err(conv_transpose(
        &x,
        &w,
        None,
        &ConvTransposeSpec::uniform(2, 0, 0, 0, 1),
    ));
    assert!(e.contains("stride"), "{e}");
    let e = err(conv_transpose(
        &x,
        &w,
        None,
        &ConvTransposeSpec::uniform(3, 2, 0, 0, 1),
    ));
    assert!(e.contains("rank 5"), "{e}");
}

/// `conv_input_grad` / `conv_weight_grad` (no autograd) equal the gradients autograd computes
/// for `conv` (themselves checked against finite differences above), for every padding mode,
/// strides, dilations, groups and 1–3 spatial axes.
#[test]
fn standalone_gradients_equal_autograd() {
    use dlsia_ops::{conv_input_grad, conv_weight_grad};
    let cases: Vec<(Vec<usize>, Vec<usize>, ConvSpec)> = vec![
        (
            vec![2, 3, 9, 8],
            vec![1, 3, 3, 3],
            ConvSpec::uniform(2, 1, 4, 4),
        ),
        (
            vec![1, 4, 7, 9],
            vec![2, 2, 3, 3],
            ConvSpec::uniform(2, 2, 1, 1).with_groups(2),
        ),
        (
            vec![2, 2, 8, 7],
            vec![3, 2, 3, 3],
            ConvSpec::uniform(2, 1, 2, 2).with_padding_mode(PaddingMode::Reflect),
        ),
        (
            vec![1, 2, 6, 7],
            vec![2, 2, 3, 3],
            ConvSpec::uniform(2, 2, 1, 1).with_padding_mode(PaddingMode::Symmetric),
        ),
        (
            vec![1, 2, 5, 4, 6],
            vec![1, 2, 3, 3, 3],
            ConvSpec::uniform(3, 1, 2, 2).with_padding_mode(PaddingMode::Replicate),
        ),
        (vec![3, 2, 11], vec![2, 2, 5], ConvSpec::uniform(1, 1, 6, 3)),
    ];
    for (i, (xd, wd, spec)) in cases.into_iter().enumerate() {
        let x = var(&rnd(xd.iter().product(), 10 + i as u64), &xd);
        let w = var(&rnd(wd.iter().product(), 20 + i as u64), &wd);
        let y = conv(x.as_tensor(), w.as_tensor(), None, &spec).unwrap();
        let gy = tensor(&rnd(y.elem_count(), 30 + i as u64), y.dims());
        let grads = (&y * &gy).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = conv_input_grad(&gy, w.as_tensor(), &xd[2..], &spec).unwrap();
        let dw = conv_weight_grad(x.as_tensor(), &gy, &wd[2..], &spec).unwrap();
        assert!(
            !dx.track_op() && !dw.track_op(),
            "case {i}: results must not be tracked"
        );
        assert_eq!(dx.dims(), xd.as_slice());
        assert_eq!(dw.dims(), wd.as_slice());
        let want_dx = flat(grads.get(x.as_tensor()).unwrap());
        let want_dw = flat(grads.get(w.as_tensor()).unwrap());
        assert_close(&format!("case {i} dx"), &flat(&dx), &want_dx, 1e-12);
        assert_close(&format!("case {i} dw"), &flat(&dw), &want_dw, 1e-12);
        // f32 takes the SIMD kernels where they apply.
        let f = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let dx32 = conv_input_grad(&f(&gy), &f(w.as_tensor()), &xd[2..], &spec).unwrap();
        let dw32 = conv_weight_grad(&f(x.as_tensor()), &f(&gy), &wd[2..], &spec).unwrap();
        assert_close(&format!("case {i} dx f32"), &flat(&dx32), &want_dx, 1e-5);
        assert_close(&format!("case {i} dw f32"), &flat(&dw32), &want_dw, 1e-5);
    }
}

#[test]
fn standalone_gradients_reject_mismatched_shapes() {
    use dlsia_ops::{conv_input_grad, conv_weight_grad};
    let spec = ConvSpec::uniform(2, 1, 1, 1);
    let gy = tensor(&rnd(2 * 5 * 5, 1), &[1, 2, 5, 5]);
    let w = tensor(&rnd(2 * 3 * 9, 2), &[2, 3, 3, 3]);
    // output gradient for a 6×5 input would be 6×5
    let e = conv_input_grad(&gy, &w, &[6, 5], &spec)
        .unwrap_err()
        .to_string();
    assert!(e.contains("output gradient"), "{e}");
    let w_bad = tensor(&rnd(3 * 3 * 9, 2), &[3, 3, 3, 3]);
    assert!(conv_input_grad(&gy, &w_bad, &[5, 5], &spec).is_err());
    let x = tensor(&rnd(3 * 5 * 5, 3), &[1, 3, 5, 5]);
    assert!(conv_weight_grad(&x, &gy, &[3], &spec).is_err());
    assert!(conv_weight_grad(&x, &gy, &[3, 3], &spec).is_ok());
    let gy_bad = tensor(&rnd(2 * 4 * 5, 1), &[1, 2, 4, 5]);
    assert!(conv_weight_grad(&x, &gy_bad, &[3, 3], &spec).is_err());
}
