//! Layers: PyTorch names, shapes and init bounds; input validation; seeded dropout; gradients
#![allow(
    clippy::too_many_arguments,
    clippy::needless_range_loop,
    clippy::type_complexity
)]
//! through normalisation layers.

mod common;

use candle_core::{DType, Device, Module, ModuleT, Tensor};
use common::*;
use dlsia_ops::nn::{
    Activation, BatchNorm, Conv, ConvTranspose, Dropout, GroupNorm, InstanceNorm, Linear, MaxPool,
    Upsample,
};
use dlsia_ops::{ConvSpec, ConvTransposeSpec, ParamKind, ParamStore};

fn names_and_shapes(store: &ParamStore) -> Vec<(String, Vec<usize>, ParamKind)> {
    store
        .entries()
        .into_iter()
        .map(|(n, k, t)| (n, t.dims().to_vec(), k))
        .collect()
}

fn max_abs(t: &Tensor) -> f64 {
    flat(t).iter().fold(0.0, |m, v| m.max(v.abs()))
}

#[test]
fn conv_layers_have_pytorch_names_shapes_and_init_bounds() {
    let store = ParamStore::new(3, &Device::Cpu);
    let r = store.root();
    let c3 = Conv::new(
        &r.pp("conv3d"),
        4,
        6,
        &[3, 3, 3],
        ConvSpec::uniform(3, 1, 1, 1).with_groups(2),
        true,
    )
    .unwrap();
    let ct = ConvTranspose::new(
        &r.pp("Step Up 0"),
        8,
        4,
        &[2, 2],
        ConvTransposeSpec::uniform(2, 2, 0, 0, 1),
        true,
    )
    .unwrap();
    let c1 = Conv::new(&r.pp("head"), 5, 2, &[1], ConvSpec::new(1), false).unwrap();
    assert_eq!(
        names_and_shapes(&store),
        [
            (
                "conv3d.weight".to_string(),
                vec![6, 2, 3, 3, 3],
                ParamKind::Trainable
            ),
            ("conv3d.bias".to_string(), vec![6], ParamKind::Trainable),
            (
                "Step Up 0.weight".to_string(),
                vec![8, 4, 2, 2],
                ParamKind::Trainable
            ),
            ("Step Up 0.bias".to_string(), vec![4], ParamKind::Trainable),
            (
                "head.weight".to_string(),
                vec![2, 5, 1],
                ParamKind::Trainable
            ),
        ]
    );
    // Bounds 1/sqrt(fan_in): conv fan_in = 2·27 = 54; transposed fan_in = out·k = 4·4 = 16.
    let b3 = 1.0 / 54f64.sqrt();
    assert!(max_abs(c3.weight()) <= b3 && max_abs(c3.weight()) > 0.8 * b3);
    assert!(max_abs(c3.bias().unwrap()) <= b3);
    let bt = 0.25;
    assert!(max_abs(ct.weight()) <= bt && max_abs(ct.weight()) > 0.8 * bt);
    assert!(c1.bias().is_none());
    assert_eq!((ct.in_channels(), ct.out_channels()), (8, 4));
    // Same seed, same weights; forward works and rejects the wrong channel count clearly.
    let again = ParamStore::new(3, &Device::Cpu);
    let c3b = Conv::new(
        &again.root().pp("conv3d"),
        4,
        6,
        &[3, 3, 3],
        ConvSpec::uniform(3, 1, 1, 1).with_groups(2),
        true,
    )
    .unwrap();
    assert_eq!(flat(c3.weight()), flat(c3b.weight()));
    let x = Tensor::ones((1, 4, 5, 5, 5), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(c3.forward(&x).unwrap().dims(), &[1, 6, 5, 5, 5]);
    let bad = Tensor::ones((1, 3, 5, 5, 5), DType::F32, &Device::Cpu).unwrap();
    let e = c3.forward(&bad).unwrap_err().to_string();
    assert!(e.contains("conv3d") && e.contains("(N, 4, …)"), "{e}");
    let e = c3
        .forward(&Tensor::ones((1, 4, 5, 5), DType::F32, &Device::Cpu).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("rank 5"), "{e}");
    let y = ct
        .forward(&Tensor::ones((2, 8, 3, 5), DType::F32, &Device::Cpu).unwrap())
        .unwrap();
    assert_eq!(y.dims(), &[2, 4, 6, 10]);
}

#[test]
fn layer_constructors_reject_impossible_hyperparameters() {
    let store = ParamStore::new(0, &Device::Cpu);
    let r = store.root();
    assert!(Conv::new(
        &r,
        3,
        4,
        &[3, 3],
        ConvSpec::uniform(2, 1, 1, 1).with_groups(2),
        true
    )
    .is_err());
    assert!(Conv::new(&r, 4, 4, &[3, 3, 3], ConvSpec::uniform(2, 1, 1, 1), true).is_err());
    assert!(Conv::new(&r, 4, 4, &[3, 0], ConvSpec::uniform(2, 1, 1, 1), true).is_err());
    assert!(Conv::new(&r, 0, 4, &[3, 3], ConvSpec::uniform(2, 1, 1, 1), true).is_err());
    assert!(ConvTranspose::new(
        &r,
        4,
        4,
        &[2, 2],
        ConvTransposeSpec::uniform(2, 2, 0, 2, 1),
        true
    )
    .is_err());
    assert!(MaxPool::new(&[2, 2], &[2], &[0, 0]).is_err());
    assert!(MaxPool::new(&[2, 2], &[2, 2], &[2, 0]).is_err());
    assert!(Upsample::to_size(&[]).is_err());
    assert!(Upsample::by_scale(&[2, 0]).is_err());
    assert!(GroupNorm::new(&r, 3, 4).is_err());
    assert!(BatchNorm::new(&r, 0).is_err());
    assert!(Dropout::with_seed(1.5, 0).is_err());
    assert!(Dropout::with_seed(f64::NAN, 0).is_err());
    assert!(Linear::new(&r, 0, 3, true).is_err());
    assert!("swishy".parse::<Activation>().is_err());
}

#[test]
fn batch_norm_5d_f32_matches_manual_and_counts_batches() {
    let store = ParamStore::new(0, &Device::Cpu);
    let bn = BatchNorm::new(&store.root().pp("normalization_0"), 2).unwrap();
    let names: Vec<_> = store.entries().into_iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        names,
        [
            ("normalization_0.weight".to_string(), ParamKind::Trainable),
            ("normalization_0.bias".to_string(), ParamKind::Trainable),
            (
                "normalization_0.running_mean".to_string(),
                ParamKind::Buffer
            ),
            ("normalization_0.running_var".to_string(), ParamKind::Buffer),
            (
                "normalization_0.num_batches_tracked".to_string(),
                ParamKind::Buffer
            ),
        ]
    );
    let xs = rnd(2 * 2 * 3 * 2 * 2, 61);
    let x = Tensor::from_vec(
        xs.iter()
            .map(|&v| v as f32 * 3.0 + 1.0)
            .collect::<Vec<f32>>(),
        (2, 2, 3, 2, 2),
        &Device::Cpu,
    )
    .unwrap();
    let y = flat(&bn.forward_t(&x, true).unwrap());
    let xv = flat(&x);
    for c in 0..2 {
        let vals: Vec<f64> = (0..2)
            .flat_map(|n| (0..12).map(move |i| (n, i)))
            .map(|(n, i)| xv[(n * 2 + c) * 12 + i])
            .collect();
        let m = vals.iter().sum::<f64>() / 24.0;
        let v = vals.iter().map(|a| (a - m).powi(2)).sum::<f64>() / 24.0;
        for n in 0..2 {
            for i in 0..12 {
                let k = (n * 2 + c) * 12 + i;
                assert!((y[k] - (xv[k] - m) / (v + 1e-5).sqrt()).abs() < 1e-5);
            }
        }
        let rm = flat(bn.running_mean().unwrap())[c];
        let rv = flat(bn.running_var().unwrap())[c];
        assert!((rm - 0.1 * m).abs() < 1e-6);
        assert!((rv - (0.9 + 0.1 * v * 24.0 / 23.0)).abs() < 1e-5);
    }
    assert_eq!(bn.num_batches_tracked(), Some(1));
    bn.forward_t(&x, true).unwrap();
    assert_eq!(bn.num_batches_tracked(), Some(2));
    // Eval mode leaves the statistics alone.
    bn.forward_t(&x, false).unwrap();
    assert_eq!(bn.num_batches_tracked(), Some(2));
    let e = bn
        .forward_t(
            &Tensor::ones((1, 2, 1), DType::F32, &Device::Cpu).unwrap(),
            true,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("more than 1 value per channel"), "{e}");
    let e = bn
        .forward_t(
            &Tensor::ones((1, 3, 4), DType::F32, &Device::Cpu).unwrap(),
            true,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("(N, 2, …)"), "{e}");
}

#[test]
fn normalisation_gradients_match_finite_differences() {
    let dims = [2usize, 4, 3, 3];
    let xs = rnd(dims.iter().product(), 71);
    let gys = rnd(xs.len(), 72);
    let store = ParamStore::with_dtype(5, &Device::Cpu, DType::F64);
    let gn = GroupNorm::new(&store.root().pp("gn"), 2, 4).unwrap();
    let inn = InstanceNorm::new(&store.root().pp("in"), 4).unwrap();
    let cases: Vec<(&str, Box<dyn Fn(&Tensor) -> Tensor>)> = vec![
        ("GroupNorm", Box::new(|x: &Tensor| gn.forward(x).unwrap())),
        (
            "InstanceNorm",
            Box::new(|x: &Tensor| inn.forward_t(x, true).unwrap()),
        ),
        (
            "BatchNorm(train, affine)",
            Box::new(|x: &Tensor| {
                let s = ParamStore::with_dtype(5, &Device::Cpu, DType::F64);
                let bn = BatchNorm::new(&s.root(), 4).unwrap();
                let w = s.get("weight").unwrap();
                w.set(&Tensor::new(&[0.5f64, -1.5, 2.0, 0.7], &Device::Cpu).unwrap())
                    .unwrap();
                bn.forward_t(x, true).unwrap()
            }),
        ),
        (
            "BatchNorm(eval, running stats)",
            Box::new(|x: &Tensor| {
                let s = ParamStore::with_dtype(5, &Device::Cpu, DType::F64);
                let bn = BatchNorm::new(&s.root(), 4).unwrap();
                s.get("running_var")
                    .unwrap()
                    .set(&Tensor::new(&[0.5f64, 2.0, 1.5, 3.0], &Device::Cpu).unwrap())
                    .unwrap();
                s.get("running_mean")
                    .unwrap()
                    .set(&Tensor::new(&[0.1f64, -0.2, 0.3, 0.0], &Device::Cpu).unwrap())
                    .unwrap();
                bn.forward_t(x, false).unwrap()
            }),
        ),
        (
            "BatchNorm(no stats)",
            Box::new(|x: &Tensor| {
                let s = ParamStore::with_dtype(5, &Device::Cpu, DType::F64);
                let cfg = dlsia_ops::nn::BatchNormConfig {
                    track_running_stats: false,
                    ..Default::default()
                };
                BatchNorm::with_config(&s.root(), 4, cfg)
                    .unwrap()
                    .forward_t(x, true)
                    .unwrap()
            }),
        ),
    ];
    for (name, f) in cases {
        let x = var(&xs, &dims);
        let y = f(x.as_tensor());
        let gx = flat(
            (&y * tensor(&gys, &dims))
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
                .get(x.as_tensor())
                .unwrap(),
        );
        let loss = |xv: &[f64]| -> f64 {
            flat(&f(&tensor(xv, &dims)))
                .iter()
                .zip(&gys)
                .map(|(a, b)| a * b)
                .sum()
        };
        check_fd(name, &xs, &gx, loss, 1e-6);
    }
}

#[test]
fn dropout_is_seeded_scaled_and_identity_in_eval() {
    let x = Tensor::ones((4, 8, 16, 16), DType::F32, &Device::Cpu).unwrap();
    let a = Dropout::with_seed(0.3, 9).unwrap();
    let b = Dropout::with_seed(0.3, 9).unwrap();
    let ya = flat(&a.forward_t(&x, true).unwrap());
    let yb = flat(&b.forward_t(&x, true).unwrap());
    assert_eq!(ya, yb, "same seed, same mask");
    let zeros = ya.iter().filter(|&&v| v == 0.0).count() as f64 / ya.len() as f64;
    assert!((zeros - 0.3).abs() < 0.02, "{zeros}");
    assert!(ya.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
    assert_ne!(
        flat(&a.forward_t(&x, true).unwrap()),
        ya,
        "next call, next mask"
    );
    assert_eq!(flat(&a.forward_t(&x, false).unwrap()), flat(&x));
    // Channel-wise: whole channels dropped.
    let c = Dropout::channel_wise(0.5, 1).unwrap();
    let yc = flat(&c.forward_t(&x, true).unwrap());
    for ch in yc.chunks(256) {
        assert!(ch.iter().all(|&v| v == ch[0]));
    }
    // Seed drawn from the store: reproducible with the store's seed.
    let s1 = ParamStore::new(4, &Device::Cpu);
    let s2 = ParamStore::new(4, &Device::Cpu);
    let d1 = Dropout::new(&s1.root(), 0.5).unwrap();
    let d2 = Dropout::new(&s2.root(), 0.5).unwrap();
    assert_eq!(
        flat(&d1.forward_t(&x, true).unwrap()),
        flat(&d2.forward_t(&x, true).unwrap())
    );
}

#[test]
fn activations_serde_parse_and_layers_compose() {
    let all = [
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Elu(1.0),
        Activation::Gelu,
        Activation::Silu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Softmax,
        Activation::Identity,
    ];
    for a in all {
        let s = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Activation>(&s).unwrap(), a);
    }
    assert_eq!(
        "LeakyReLU".parse::<Activation>().unwrap(),
        Activation::LeakyRelu(0.01)
    );
    let x = tensor(&[-2.0, -0.5, 0.0, 1.5], &[1, 4]);
    assert_eq!(
        flat(&Activation::Relu.forward(&x).unwrap()),
        [0.0, 0.0, 0.0, 1.5]
    );
    assert_eq!(
        flat(&Activation::LeakyRelu(0.1).forward(&x).unwrap()),
        [-0.2, -0.05, 0.0, 1.5]
    );
    assert_eq!(flat(&Activation::Identity.forward(&x).unwrap()), flat(&x));
    // A small 3-D down/up path.
    let pool = MaxPool::new(&[2, 2, 2], &[2, 2, 2], &[0, 0, 0]).unwrap();
    let up = Upsample::by_scale(&[2, 2, 2]).unwrap();
    let up_to = Upsample::to_size(&[9, 9, 9]).unwrap();
    let v = Tensor::ones((1, 2, 8, 8, 8), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        up.forward(&pool.forward(&v).unwrap()).unwrap().dims(),
        &[1, 2, 8, 8, 8]
    );
    assert_eq!(up_to.forward(&v).unwrap().dims(), &[1, 2, 9, 9, 9]);
    let lin = Linear::new(&ParamStore::new(0, &Device::Cpu).root(), 8, 3, true).unwrap();
    assert_eq!(lin.forward(&v).unwrap().dims(), &[1, 2, 8, 8, 3]);
    assert!(lin
        .forward(&Tensor::ones((2, 7), DType::F32, &Device::Cpu).unwrap())
        .is_err());
}
