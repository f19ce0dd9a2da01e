//! Parity with PyTorch on fixtures written by `tools/ops_fixtures.py` (float64).
#![allow(
    clippy::too_many_arguments,
    clippy::needless_range_loop,
    clippy::type_complexity
)]

mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Module, ModuleT, Tensor, Var};
use common::{assert_close, flat};
use dlsia_ops::nn::{
    Activation, BatchNorm, BatchNormConfig, GroupNorm, InstanceNorm, InstanceNormConfig, Linear,
};
use dlsia_ops::{
    conv, conv_transpose, max_pool, upsample_nearest, upsample_nearest_scale, ConvSpec,
    ConvTransposeSpec, LoadOptions, PaddingMode, ParamStore,
};

const TOL: f64 = 1e-12;

fn fixtures() -> HashMap<String, Tensor> {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ops_torch.safetensors"
    );
    candle_core::safetensors::load(p, &Device::Cpu).unwrap()
}

struct Fx(HashMap<String, Tensor>);

impl Fx {
    fn t(&self, k: &str) -> Tensor {
        self.0
            .get(k)
            .unwrap_or_else(|| panic!("fixture lacks {k}"))
            .clone()
    }
    fn v(&self, k: &str) -> Var {
        Var::from_tensor(&self.t(k)).unwrap()
    }
    fn check(&self, k: &str, got: &Tensor) {
        let want = self.t(k);
        assert_eq!(got.dims(), want.dims(), "{k}: shape");
        assert_close(k, &flat(got), &flat(&want), TOL);
    }
}

fn backward(fx: &Fx, prefix: &str, y: &Tensor) -> candle_core::backprop::GradStore {
    fx.check(&format!("{prefix}.y"), y);
    (y * fx.t(&format!("{prefix}.g")))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap()
}

#[test]
fn conv_and_conv_transpose_match_pytorch() {
    let fx = Fx(fixtures());
    // conv2d stride (2,1) padding (1,2) dilation (1,2) with bias
    let (x, w, b) = (fx.v("conv2d.x"), fx.v("conv2d.w"), fx.v("conv2d.b"));
    let spec = ConvSpec {
        stride: vec![2, 1],
        padding: vec![1, 2],
        dilation: vec![1, 2],
        groups: 1,
        padding_mode: PaddingMode::Zeros,
    };
    let y = conv(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()), &spec).unwrap();
    let g = backward(&fx, "conv2d", &y);
    fx.check("conv2d.dx", g.get(x.as_tensor()).unwrap());
    fx.check("conv2d.dw", g.get(w.as_tensor()).unwrap());
    fx.check("conv2d.db", g.get(b.as_tensor()).unwrap());

    // reflect padding through the padding mode
    let x = fx.v("conv2d_reflect.x");
    let spec = ConvSpec::uniform(2, 1, 2, 2).with_padding_mode(PaddingMode::Reflect);
    let y = conv(
        x.as_tensor(),
        &fx.t("conv2d_reflect.w"),
        Some(&fx.t("conv2d_reflect.b")),
        &spec,
    )
    .unwrap();
    let g = backward(&fx, "conv2d_reflect", &y);
    fx.check("conv2d_reflect.dx", g.get(x.as_tensor()).unwrap());

    // conv3d per-axis stride, groups 2
    let (x, w) = (fx.v("conv3d.x"), fx.v("conv3d.w"));
    let spec = ConvSpec {
        stride: vec![1, 2, 1],
        padding: vec![1; 3],
        dilation: vec![1; 3],
        groups: 2,
        padding_mode: PaddingMode::Zeros,
    };
    let y = conv(x.as_tensor(), w.as_tensor(), None, &spec).unwrap();
    let g = backward(&fx, "conv3d", &y);
    fx.check("conv3d.dx", g.get(x.as_tensor()).unwrap());
    fx.check("conv3d.dw", g.get(w.as_tensor()).unwrap());

    // conv_transpose2d with per-axis output padding
    let (x, w) = (fx.v("convt2d.x"), fx.v("convt2d.w"));
    let spec = ConvTransposeSpec {
        stride: vec![2, 2],
        padding: vec![1, 1],
        output_padding: vec![1, 0],
        dilation: vec![1, 1],
        groups: 1,
    };
    let y = conv_transpose(x.as_tensor(), w.as_tensor(), None, &spec).unwrap();
    let g = backward(&fx, "convt2d", &y);
    fx.check("convt2d.dx", g.get(x.as_tensor()).unwrap());
    fx.check("convt2d.dw", g.get(w.as_tensor()).unwrap());

    // conv_transpose3d kernel 2 stride 2 with bias
    let (x, w, b) = (fx.v("convt3d.x"), fx.v("convt3d.w"), fx.v("convt3d.b"));
    let y = conv_transpose(
        x.as_tensor(),
        w.as_tensor(),
        Some(b.as_tensor()),
        &ConvTransposeSpec::uniform(3, 2, 0, 0, 1),
    )
    .unwrap();
    let g = backward(&fx, "convt3d", &y);
    fx.check("convt3d.dx", g.get(x.as_tensor()).unwrap());
    fx.check("convt3d.dw", g.get(w.as_tensor()).unwrap());
    fx.check("convt3d.db", g.get(b.as_tensor()).unwrap());
}

#[test]
fn pooling_with_ties_and_upsampling_match_pytorch() {
    let fx = Fx(fixtures());
    let x = fx.v("maxpool2d.x");
    let y = max_pool(x.as_tensor(), &[3, 3], &[2, 2], &[1, 1]).unwrap();
    let g = backward(&fx, "maxpool2d", &y);
    fx.check("maxpool2d.dx", g.get(x.as_tensor()).unwrap());
    let x = fx.v("maxpool3d.x");
    let y = max_pool(x.as_tensor(), &[2, 3, 2], &[2, 1, 2], &[1, 1, 0]).unwrap();
    let g = backward(&fx, "maxpool3d", &y);
    fx.check("maxpool3d.dx", g.get(x.as_tensor()).unwrap());

    fx.check(
        "up2d.y",
        &upsample_nearest(&fx.t("up2d.x"), &[13, 3]).unwrap(),
    );
    fx.check(
        "up3d.y",
        &upsample_nearest(&fx.t("up3d.x"), &[7, 9, 11]).unwrap(),
    );
    fx.check(
        "upscale.y",
        &upsample_nearest_scale(&fx.t("upscale.x"), &[3, 3]).unwrap(),
    );
}

#[test]
fn batch_norm_2d_3d_train_eval_and_running_stats_match_pytorch() {
    let fx = Fx(fixtures());
    for name in ["bn2d", "bn3d"] {
        let store = ParamStore::with_dtype(0, &Device::Cpu, DType::F64);
        let c = fx.t(&format!("{name}.weight")).dim(0).unwrap();
        let bn = BatchNorm::new(&store.root().pp("bn"), c).unwrap();
        let mut init = std::collections::BTreeMap::new();
        init.insert("bn.weight".to_string(), fx.t(&format!("{name}.weight")));
        init.insert("bn.bias".to_string(), fx.t(&format!("{name}.bias")));
        store
            .load_tensors(
                &init,
                &LoadOptions {
                    allow_missing: true,
                    ..Default::default()
                },
            )
            .unwrap();
        let x1 = fx.v(&format!("{name}.x1"));
        let y1 = bn.forward_t(x1.as_tensor(), true).unwrap();
        let g = backward(&fx, name, &y1);
        fx.check(&format!("{name}.dx1"), g.get(x1.as_tensor()).unwrap());
        fx.check(
            &format!("{name}.dweight"),
            g.get(&store.get("bn.weight").unwrap()).unwrap(),
        );
        fx.check(
            &format!("{name}.dbias"),
            g.get(&store.get("bn.bias").unwrap()).unwrap(),
        );
        fx.check(
            &format!("{name}.y2"),
            &bn.forward_t(&fx.t(&format!("{name}.x2")), true).unwrap(),
        );
        fx.check(
            &format!("{name}.y3"),
            &bn.forward_t(&fx.t(&format!("{name}.x3")), false).unwrap(),
        );
        fx.check(&format!("{name}.running_mean"), bn.running_mean().unwrap());
        fx.check(&format!("{name}.running_var"), bn.running_var().unwrap());
        let nbt = fx
            .t(&format!("{name}.num_batches_tracked"))
            .to_scalar::<i64>()
            .unwrap();
        assert_eq!(bn.num_batches_tracked(), Some(nbt));
        assert_eq!(
            store.get("bn.num_batches_tracked").unwrap().dtype(),
            DType::I64
        );
    }
    // No running statistics: batch statistics even in eval mode, only weight/bias stored.
    let store = ParamStore::with_dtype(0, &Device::Cpu, DType::F64);
    let cfg = BatchNormConfig {
        track_running_stats: false,
        ..Default::default()
    };
    let bn = BatchNorm::with_config(&store.root(), 3, cfg).unwrap();
    fx.check(
        "bn_nostats.y",
        &bn.forward_t(&fx.t("bn_nostats.x"), false).unwrap(),
    );
    let names: Vec<String> = store.entries().into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["weight", "bias"]);
}

#[test]
fn group_instance_norm_linear_activations_match_pytorch() {
    let fx = Fx(fixtures());
    let load = |store: &ParamStore, pairs: &[(&str, &str)]| {
        let m = pairs
            .iter()
            .map(|(k, f)| (k.to_string(), fx.t(f)))
            .collect();
        store
            .load_tensors(
                &m,
                &LoadOptions {
                    allow_missing: true,
                    ..Default::default()
                },
            )
            .unwrap();
    };
    let store = ParamStore::with_dtype(0, &Device::Cpu, DType::F64);
    let gn = GroupNorm::new(&store.root(), 2, 4).unwrap();
    load(&store, &[("weight", "gn.weight"), ("bias", "gn.bias")]);
    fx.check("gn.y", &gn.forward(&fx.t("gn.x")).unwrap());

    let store = ParamStore::with_dtype(0, &Device::Cpu, DType::F64);
    let cfg = InstanceNormConfig {
        affine: true,
        track_running_stats: true,
        ..Default::default()
    };
    let inn = InstanceNorm::with_config(&store.root(), 3, cfg).unwrap();
    load(
        &store,
        &[("weight", "inorm.weight"), ("bias", "inorm.bias")],
    );
    fx.check("inorm.y1", &inn.forward_t(&fx.t("inorm.x1"), true).unwrap());
    fx.check(
        "inorm.y2",
        &inn.forward_t(&fx.t("inorm.x2"), false).unwrap(),
    );
    fx.check("inorm.running_mean", &store.get("running_mean").unwrap());
    fx.check("inorm.running_var", &store.get("running_var").unwrap());

    let store = ParamStore::with_dtype(0, &Device::Cpu, DType::F64);
    let lin = Linear::new(&store.root(), 5, 4, true).unwrap();
    load(
        &store,
        &[("weight", "linear.weight"), ("bias", "linear.bias")],
    );
    fx.check("linear.y", &lin.forward(&fx.t("linear.x")).unwrap());

    let x = fx.t("act.x");
    for (key, act) in [
        ("gelu", Activation::Gelu),
        ("elu", Activation::Elu(0.7)),
        ("leaky", Activation::LeakyRelu(0.2)),
        ("silu", Activation::Silu),
        ("sigmoid", Activation::Sigmoid),
        ("tanh", Activation::Tanh),
    ] {
        let got = act.forward(&x).unwrap();
        let want = fx.t(&format!("act.{key}"));
        // erf-GELU goes through candle's erf approximation: allow a little more.
        assert_close(key, &flat(&got), &flat(&want), 1e-7);
    }
    fx.check(
        "softmax.y",
        &Activation::Softmax.forward(&fx.t("softmax.x")).unwrap(),
    );
}
