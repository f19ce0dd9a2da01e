//! A small network learns a simple synthetic task in each mode, in seconds.

mod common;

use candle_core::{DType, Device, Tensor};
use dlsia_data::TensorDataset;
use dlsia_nets::{MsaeConfig, Topology, TuNetConfig};
use dlsia_train::{TrainConfig, Trainer};

use common::{disks, loader};

fn quiet(mut c: TrainConfig) -> TrainConfig {
    c.progress = false;
    c
}

#[test]
fn segmentation_with_sparse_labels() {
    let d = disks(16, 16, 0.4, 1);
    let v = disks(8, 16, 0.4, 2);
    let train = loader(
        TensorDataset::new(d.images(), Some(d.sparse_labels(0.5, 3)), None).unwrap(),
        4,
        true,
        0,
    );
    let val = loader(
        TensorDataset::new(v.images(), Some(v.sparse_labels(0.0, 4)), None).unwrap(),
        8,
        false,
        0,
    );
    let net = Topology::TuNet(TuNetConfig::new(&[16, 16], 1, 2, 2, 4))
        .build(5, &Device::Cpu)
        .unwrap();
    let cfg = quiet(
        TrainConfig::from_toml(
            "epochs = 12\ntask = { kind = \"segmentation\", num_classes = 2 }\noptimizer = { kind = \"adamw\", lr = 0.01 }",
        )
        .unwrap(),
    );
    let r = Trainer::new(&cfg, net.as_ref())
        .unwrap()
        .fit(&train, Some(&val))
        .unwrap();
    let (first, last) = (&r.history[0], &r.history[11]);
    let val_last = last.validation.as_ref().unwrap();
    // Cross-entropy starts near ln 2 and falls below 0.2 on held-out images.
    assert!(first.train.loss.unwrap() > 0.45, "{first:?}");
    assert!(val_last.loss.unwrap() < 0.2, "{val_last:?}");
    assert!(val_last.f1_macro.unwrap() > 0.9, "{val_last:?}");
    // Metrics count every labelled pixel of the epoch: all 8·16² validation pixels, about half
    // of the 16·16² training pixels (the rest are -1).
    assert_eq!(val_last.pixels, 2048.0);
    let labelled = d
        .sparse_labels(0.5, 3)
        .ge(0i64)
        .unwrap()
        .to_dtype(candle_core::DType::F64)
        .unwrap();
    let labelled = labelled.sum_all().unwrap().to_scalar::<f64>().unwrap();
    assert_eq!(last.train.pixels, labelled);
    assert!(labelled > 1700.0 && labelled < 2400.0);
}

#[test]
fn regression_with_mask() {
    let d = disks(16, 16, 0.4, 11);
    let train = loader(
        TensorDataset::new(d.images(), Some(d.clean()), Some(d.mask(0.5, 12))).unwrap(),
        4,
        true,
        0,
    );
    let mut topo = TuNetConfig::new(&[16, 16], 1, 1, 2, 4);
    topo.normalization = dlsia_nets::Norm::None;
    let net = Topology::TuNet(topo).build(5, &Device::Cpu).unwrap();
    let cfg = quiet(
        TrainConfig::from_toml(
            "epochs = 12\ntask = { kind = \"regression\" }\noptimizer = { kind = \"adam\", lr = 0.01 }",
        )
        .unwrap(),
    );
    let r = Trainer::new(&cfg, net.as_ref())
        .unwrap()
        .fit(&train, None)
        .unwrap();
    let (first, last) = (&r.history[0].train, &r.history[11].train);
    // Masked MSE of denoising falls from about 0.2 below 0.06; Pearson on the masked pixels
    // rises above 0.85.
    assert!(first.loss.unwrap() > 0.15, "{first:?}");
    assert!(last.loss.unwrap() < 0.06, "{last:?}");
    assert!(last.pearson.unwrap() > 0.85, "{last:?}");
    // Only masked pixels count.
    let kept = d
        .mask(0.5, 12)
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
    assert_eq!(last.pixels, kept);
}

#[test]
fn autoencoder_reconstruction() {
    let d = disks(32, 16, 0.0, 21);
    let train = loader(
        TensorDataset::new(d.images(), None, None).unwrap(),
        8,
        true,
        0,
    );
    let net = Topology::MsAutoencoder(MsaeConfig::new(&[1, 16, 16], 2, 4, 2.0, 8, 2, 1))
        .build(5, &Device::Cpu)
        .unwrap();
    let cfg = quiet(
        TrainConfig::from_toml(
            "epochs = 15\ntask = { kind = \"autoencoder\" }\noptimizer = { kind = \"adam\", lr = 0.005 }",
        )
        .unwrap(),
    );
    let r = Trainer::new(&cfg, net.as_ref())
        .unwrap()
        .fit(&train, None)
        .unwrap();
    let (first, last) = (&r.history[0].train, &r.history[14].train);
    // Reconstruction MSE falls from about 0.25 below 0.05; Pearson with the input above 0.85.
    assert!(first.loss.unwrap() > 0.2, "{first:?}");
    assert!(last.loss.unwrap() < 0.05, "{last:?}");
    assert!(last.pearson.unwrap() > 0.85, "{last:?}");
    assert_eq!(last.pixels, (32 * 16 * 16) as f64);
}

#[test]
fn ensemble_members_learn_in_threads() {
    let d = disks(16, 16, 0.4, 1);
    let v = disks(8, 16, 0.4, 2);
    let train = loader(
        TensorDataset::new(d.images(), Some(d.sparse_labels(0.5, 3)), None).unwrap(),
        4,
        true,
        0,
    );
    let val = loader(
        TensorDataset::new(v.images(), Some(v.sparse_labels(0.0, 4)), None).unwrap(),
        8,
        false,
        0,
    );
    let topo = Topology::TuNet(TuNetConfig::new(&[16, 16], 1, 2, 2, 4));
    let nets = dlsia_train::build_members(&topo, 2, 5, &Device::Cpu).unwrap();
    let cfg = quiet(
        TrainConfig::from_toml(
            "epochs = 20\ntask = { kind = \"segmentation\", num_classes = 2 }\noptimizer = { kind = \"adamw\", lr = 0.01 }",
        )
        .unwrap(),
    );
    let reports = dlsia_train::train_ensemble(
        &cfg,
        &nets,
        &train,
        Some(&val),
        dlsia_train::EnsembleMode::Threads,
    )
    .unwrap();
    assert_eq!(reports.len(), 2);
    for (k, r) in reports.iter().enumerate() {
        let first = r.history[0].train.loss.unwrap();
        let best = r.best_value.unwrap();
        // Each member's best validation cross-entropy falls from about ln 2 below 0.25 (0.07
        // and 0.22 here).
        assert!(first > 0.45, "member {k}: {first}");
        assert!(best < 0.25, "member {k}: {best}");
    }
    // The members differ (own initialisation and batch order).
    assert_ne!(
        reports[0].history[0].train.loss,
        reports[1].history[0].train.loss
    );
}

/// The mixed-precision path of the trainer (what bf16/f16 use on a GPU), with f64 master
/// weights and an f32 compute copy standing in: it follows plain f32 training of the same
/// initial weights step for step (losses and final weights to f32 rounding; SGD, because Adam
/// turns the rounding noise of analytically vanishing gradients — a bias before BatchNorm —
/// into full-size steps), keeps the masters in f64 and brings the BatchNorm running statistics
/// back to them.
#[test]
fn mixed_precision_follows_plain_training() {
    let d = disks(8, 16, 0.4, 1);
    let train = loader(
        TensorDataset::new(d.images(), Some(d.sparse_labels(0.5, 3)), None).unwrap(),
        4,
        true,
        0,
    );
    let topo = Topology::TuNet(TuNetConfig::new(&[16, 16], 1, 2, 2, 4));
    let plain = topo.build(5, &Device::Cpu).unwrap();
    let master = topo.build_in(5, &Device::Cpu, DType::F64).unwrap();
    // Identical starting points: the f64 masters hold the f32 network's values exactly.
    for (name, _, t) in plain.params().entries() {
        let v = master.params().get(&name).unwrap();
        v.set(&t.to_dtype(v.dtype()).unwrap()).unwrap();
    }
    let cfg = quiet(
        TrainConfig::from_toml(
            "epochs = 3\ntask = { kind = \"segmentation\", num_classes = 2 }\noptimizer = { kind = \"sgd\", lr = 0.1 }",
        )
        .unwrap(),
    );
    let ra = Trainer::new(&cfg, plain.as_ref())
        .unwrap()
        .fit(&train, None)
        .unwrap();
    let rb = Trainer::new(&cfg, master.as_ref())
        .unwrap()
        .with_compute_dtype(DType::F32)
        .unwrap()
        .fit(&train, None)
        .unwrap();
    for (a, b) in ra.history.iter().zip(&rb.history) {
        let (la, lb) = (a.train.loss.unwrap(), b.train.loss.unwrap());
        assert!((la - lb).abs() < 1e-4 * la.abs().max(1.0), "{la} vs {lb}");
    }
    assert!(ra.history[2].train.loss < ra.history[0].train.loss);
    for (name, _, ta) in plain.params().entries() {
        let tb = master.params().get(&name).unwrap();
        assert_eq!(
            tb.dtype(),
            if name.ends_with("num_batches_tracked") {
                DType::I64
            } else {
                DType::F64
            },
            "{name}"
        );
        let diff = (ta.to_dtype(DType::F64).unwrap()
            - tb.as_tensor().to_dtype(DType::F64).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
        assert!(diff < 1e-3, "{name}: {diff}");
    }
    // The running statistics (compared with the plain run above) moved away from their start.
    let means: Vec<Tensor> = master
        .params()
        .entries()
        .into_iter()
        .filter(|(n, _, _)| n.ends_with("running_mean"))
        .map(|(_, _, t)| t)
        .collect();
    assert!(!means.is_empty());
    for t in means {
        let s = t
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        assert!(s > 0.0, "running statistics did not reach the masters");
    }
}
