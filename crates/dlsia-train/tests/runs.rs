//! Whole runs: exact resume, best-model restore (the original's aliasing bug), NaN stops,
//! overwrite protection, gradient accumulation, ensembles, loss scaling, early stopping.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use candle_core::{Device, Tensor};
use dlsia_data::{AugmentConfig, Augmentation, Batch, DataLoader, TensorDataset};
use dlsia_nets::{Network, Norm, Topology, TuNetConfig};
use dlsia_ops::ParamStore;
use dlsia_train::checkpoint::list_checkpoints;
use dlsia_train::{
    build_members, train_ensemble, Batches, Callback, Checkpoint, Control, EnsembleMode, EpochEnd,
    EpochRecord, Error, OutputConfig, StopReason, TaskConfig, TrainConfig, Trainer,
};

use common::{disks, fixed_batches, loader, weights};

type Weights = Vec<(String, Vec<f32>)>;

fn tunet(norm: Norm, seed: u64) -> Box<dyn Network> {
    let mut c = TuNetConfig::new(&[16, 16], 1, 2, 2, 4);
    c.normalization = norm;
    Topology::TuNet(c).build(seed, &Device::Cpu).unwrap()
}

fn config(text: &str, dir: Option<&Path>) -> TrainConfig {
    let mut c = TrainConfig::from_toml(text).unwrap();
    c.progress = false;
    c.output = dir.map(OutputConfig::new);
    c
}

/// Training data with augmentation and a prefetch thread, as a real run would use.
fn augmented_loaders() -> (DataLoader<TensorDataset>, DataLoader<TensorDataset>) {
    let d = disks(12, 16, 0.4, 1);
    let v = disks(4, 16, 0.4, 2);
    let train = DataLoader::new(
        TensorDataset::new(d.images(), Some(d.sparse_labels(0.3, 3)), None).unwrap(),
        dlsia_data::LoaderConfig {
            batch_size: 2,
            shuffle: true,
            seed: 4,
            drop_last: false,
            prefetch: 2,
        },
    )
    .unwrap()
    .with_augmentation(
        Augmentation::new(AugmentConfig {
            dihedral: true,
            scale: Some((0.9, 1.1)),
            noise_std: Some(0.05),
        })
        .unwrap(),
    );
    let val = loader(
        TensorDataset::new(v.images(), Some(v.sparse_labels(0.0, 5)), None).unwrap(),
        4,
        false,
        0,
    );
    (train, val)
}

/// Stops the run after a given epoch.
struct StopAfter(usize);

impl Callback for StopAfter {
    fn on_epoch_end(&mut self, e: &EpochEnd<'_>) -> dlsia_train::Result<Control> {
        Ok(if e.record.epoch == self.0 {
            Control::Stop
        } else {
            Control::Continue
        })
    }
}

fn times_removed(h: &[EpochRecord]) -> Vec<EpochRecord> {
    h.iter().map(EpochRecord::without_time).collect()
}

const RESUME_CONFIG: &str = r#"
epochs = 4
seed = 9
accumulate_batches = 2
task = { kind = "segmentation", num_classes = 2 }
[optimizer]
kind = "adamw"
lr = 0.01
[scheduler]
kind = "cosine"
warmup = 2
interval = "step"
[clip]
kind = "norm"
max_norm = 0.5
[early_stopping]
patience = 10
"#;

#[test]
fn resume_from_a_checkpoint_equals_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (tmp.path().join("a"), tmp.path().join("b"));

    let net_a = tunet(Norm::Batch, 5);
    let (train, val) = augmented_loaders();
    let cfg_a = config(RESUME_CONFIG, Some(&dir_a));
    let ra = Trainer::new(&cfg_a, net_a.as_ref())
        .unwrap()
        .fit(&train, Some(&val))
        .unwrap();

    // Interrupted after epoch 2, then resumed in a "new process": fresh loaders and a network
    // initialised from another seed.
    let net_b = tunet(Norm::Batch, 5);
    let cfg_b = config(RESUME_CONFIG, Some(&dir_b));
    let (train, val) = augmented_loaders();
    let rb1 = Trainer::new(&cfg_b, net_b.as_ref())
        .unwrap()
        .with_callback(StopAfter(2))
        .fit(&train, Some(&val))
        .unwrap();
    assert_eq!((rb1.stop, rb1.history.len()), (StopReason::Callback, 2));
    let net_c = tunet(Norm::Batch, 77);
    let (train, val) = augmented_loaders();
    let rb = Trainer::new(&cfg_b, net_c.as_ref())
        .unwrap()
        .resume(&dir_b, &train, Some(&val))
        .unwrap();

    assert_eq!(times_removed(&ra.history), times_removed(&rb.history));
    assert_eq!(
        (ra.best_epoch, ra.best_value),
        (rb.best_epoch, rb.best_value)
    );
    assert_eq!(weights(net_a.as_ref()), weights(net_c.as_ref()));
    // The final checkpoints hold the same last weights and optimizer moments, bit for bit.
    let last = |d: &Path| Checkpoint::load(&list_checkpoints(d).unwrap().pop().unwrap().1).unwrap();
    let (ca, cb) = (last(&dir_a), last(&dir_b));
    assert_eq!(ca.meta.epochs_done, 4);
    for (x, y) in [(&ca.model, &cb.model), (&ca.optimizer, &cb.optimizer)] {
        assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
        for (k, t) in x {
            let (a, b) = (flat(t), flat(&y[k]));
            assert_eq!(a, b, "{k}");
        }
    }
    assert_eq!(
        ca.meta.global_step,
        4 * 3,
        "12 samples / 2 per batch / 2 accumulated"
    );

    // Only the newest two periodic checkpoints are kept.
    let kept: Vec<usize> = list_checkpoints(&dir_a)
        .unwrap()
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(kept, vec![3, 4]);

    // A network of another topology cannot resume this run.
    let other = Topology::TuNet(TuNetConfig::new(&[16, 16], 1, 2, 2, 8))
        .build(0, &Device::Cpu)
        .unwrap();
    let e = Trainer::new(&cfg_b, other.as_ref())
        .unwrap()
        .resume(&dir_b, &train, Some(&val))
        .unwrap_err()
        .to_string();
    assert!(e.contains("another network"), "{e}");
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(candle_core::DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// Records the network's weights at the end of every epoch.
struct Snapshots {
    store: ParamStore,
    seen: Arc<Mutex<Vec<Weights>>>,
}

impl Callback for Snapshots {
    fn on_epoch_end(&mut self, _e: &EpochEnd<'_>) -> dlsia_train::Result<Control> {
        let w = self
            .store
            .entries()
            .into_iter()
            .map(|(n, _, t)| (n, flat(&t).into_iter().map(|v| v as f32).collect()))
            .collect();
        self.seen.lock().unwrap().push(w);
        Ok(Control::Continue)
    }
}

#[test]
fn best_model_restore_restores_the_best_epoch_not_the_last() {
    // Validation labels are the training labels inverted: the better the network fits the
    // training set, the worse its validation loss, so the best epoch is the first. dlsia's
    // `best_state_dict = net.state_dict()` aliases the live weights and "restores" the last.
    let tmp = tempfile::tempdir().unwrap();
    let d = disks(8, 16, 0.2, 31);
    let train = fixed_batches(&d.images(), Some(&d.sparse_labels(0.0, 1)), 4);
    let val = fixed_batches(&d.images(), Some(&d.inverted_labels()), 8);
    let net = tunet(Norm::Batch, 3);
    let seen = Arc::new(Mutex::new(vec![]));
    let cfg = config(
        "epochs = 5\ntask = { kind = \"segmentation\", num_classes = 2 }\noptimizer = { kind = \"adam\", lr = 0.01 }",
        Some(tmp.path()),
    );
    let r = Trainer::new(&cfg, net.as_ref())
        .unwrap()
        .with_callback(Snapshots {
            store: net.params().clone(),
            seen: seen.clone(),
        })
        .fit(&train, Some(&val))
        .unwrap();
    let val_loss: Vec<f64> = r
        .history
        .iter()
        .map(|h| h.validation.as_ref().unwrap().loss.unwrap())
        .collect();
    assert!(val_loss.windows(2).all(|w| w[1] > w[0]), "{val_loss:?}");
    assert_eq!(r.best_epoch, Some(1));
    assert!(r.restored_best);
    let seen = seen.lock().unwrap();
    let now = weights(net.as_ref());
    assert_eq!(now, seen[0], "the network holds the weights of epoch 1");
    assert_ne!(now, seen[4], "not those of the last epoch");
    // The best-model directory holds the same weights and loads as a model.
    let (best, meta) = dlsia_nets::load_model(&tmp.path().join("best"), &Device::Cpu).unwrap();
    assert_eq!(weights(best.as_ref()), seen[0]);
    assert_eq!(meta["epoch"], 1);
    // Evaluating the restored network gives epoch 1's validation loss again.
    let out = net.forward_t(&val[0].image, false).unwrap();
    let l = dlsia_losses::CrossEntropy::default();
    let l = dlsia_losses::Loss::loss(&l, &out, val[0].target.as_ref().unwrap(), None)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64;
    assert!((l - val_loss[0]).abs() < 1e-6, "{l} vs {}", val_loss[0]);

    // The run log has one row per epoch and the curves are drawn.
    let csv = std::fs::read_to_string(tmp.path().join("run.csv")).unwrap();
    assert_eq!(csv.lines().count(), 6);
    assert!(csv.starts_with("epoch,lr,steps,seconds,train_loss,train_f1_micro"));
    let jsonl = std::fs::read_to_string(tmp.path().join("run.jsonl")).unwrap();
    let back: Vec<EpochRecord> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(times_removed(&back), times_removed(&r.history));
    for svg in ["loss.svg", "metric.svg"] {
        let s = std::fs::read_to_string(tmp.path().join(svg)).unwrap();
        assert!(s.contains("<svg") && s.contains("validation"), "{svg}");
    }
}

/// Fixed batches whose second batch holds a NaN input pixel from the `poison`-th pass on.
struct Poisoned {
    batches: Vec<Batch>,
    calls: AtomicUsize,
    poison: usize,
}

impl Batches for Poisoned {
    fn num_batches(&self) -> usize {
        self.batches.len()
    }
    fn batches(&self, _stream: u64) -> Box<dyn Iterator<Item = dlsia_train::Result<Batch>> + '_> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let mut b = self.batches.clone();
        if call >= self.poison {
            let nan = Tensor::full(f32::NAN, (1, 1, 1, 1), &Device::Cpu).unwrap();
            let at = [0..1, 0..1, 0..1, 0..1];
            b[1].image = b[1].image.slice_assign(&at, &nan).unwrap();
        }
        Box::new(b.into_iter().map(Ok))
    }
}

/// A network whose training outputs turn NaN from the `from`-th training forward pass on (as a
/// diverging run's would).
struct Diverging {
    inner: Box<dyn Network>,
    calls: AtomicUsize,
    from: usize,
}

impl Network for Diverging {
    fn forward_t(&self, x: &Tensor, train: bool) -> dlsia_nets::Result<Tensor> {
        let out = self.inner.forward_t(x, train)?;
        if train && self.calls.fetch_add(1, Ordering::SeqCst) >= self.from {
            return Ok(out.affine(1.0, f64::NAN)?);
        }
        Ok(out)
    }
    fn topology(&self) -> Topology {
        self.inner.topology()
    }
    fn params(&self) -> &ParamStore {
        self.inner.params()
    }
    fn spatial_dims(&self) -> usize {
        self.inner.spatial_dims()
    }
    fn in_channels(&self) -> usize {
        self.inner.in_channels()
    }
    fn out_channels(&self) -> usize {
        self.inner.out_channels()
    }
    fn check_input(&self, shape: &[usize]) -> dlsia_nets::Result<()> {
        self.inner.check_input(shape)
    }
}

/// Runs 4 epochs of 2 batches that fail in epoch 2, batch 1; returns the error after checking
/// that it names epoch 1's checkpoint, the only one kept, whose weights are finite.
fn run_failing(net: &dyn Network, data: &dyn Batches, dir: &Path) -> Error {
    let cfg = config(
        "epochs = 4\ntask = { kind = \"segmentation\", num_classes = 2 }",
        Some(dir),
    );
    let err = Trainer::new(&cfg, net)
        .unwrap()
        .fit(data, None)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("epoch 2") && msg.contains("epoch-0001"),
        "{msg}"
    );
    let kept: Vec<usize> = list_checkpoints(dir)
        .unwrap()
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(kept, vec![1]);
    let ckpt = Checkpoint::load(&dir.join("checkpoints/epoch-0001.safetensors")).unwrap();
    assert!(ckpt
        .model
        .values()
        .all(|t| flat(t).iter().all(|v| v.is_finite())));
    err
}

#[test]
fn nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let d = disks(8, 16, 0.2, 41);
    let data = fixed_batches(&d.images(), Some(&d.sparse_labels(0.0, 1)), 4);
    let net = Diverging {
        inner: tunet(Norm::Batch, 3),
        calls: AtomicUsize::new(0),
        from: 3,
    };
    let err = run_failing(&net, &data, tmp.path());
    let good = tmp.path().join("checkpoints/epoch-0001.safetensors");
    match &err {
        Error::NonFiniteLoss {
            split,
            epoch,
            batch,
            value,
            last_checkpoint,
        } => {
            assert_eq!((*split, *epoch, *batch), ("training", 2, 1));
            assert!(value.is_nan());
            assert_eq!(last_checkpoint.as_deref(), Some(good.as_path()));
        }
        e => panic!("unexpected error {e}"),
    }
}

#[test]
fn nan_input_hidden_from_the_loss_stops_at_the_gradient() {
    // A NaN input pixel does not reach a TUNet's output (ReLU and max pooling map NaN to a
    // number), so the loss stays finite; its gradient does not, and the step is refused.
    let tmp = tempfile::tempdir().unwrap();
    let d = disks(8, 16, 0.2, 41);
    let data = Poisoned {
        batches: fixed_batches(&d.images(), Some(&d.sparse_labels(0.0, 1)), 4),
        calls: AtomicUsize::new(0),
        poison: 1,
    };
    let net = tunet(Norm::Batch, 3);
    let err = run_failing(net.as_ref(), &data, tmp.path());
    let good = tmp.path().join("checkpoints/epoch-0001.safetensors");
    match &err {
        Error::NonFiniteGradient {
            epoch,
            batch,
            value,
            last_checkpoint,
        } => {
            assert_eq!((*epoch, *batch), (2, 1));
            assert!(!value.is_finite());
            assert_eq!(last_checkpoint.as_deref(), Some(good.as_path()));
        }
        e => panic!("unexpected error {e}"),
    }
    assert!(err.to_string().contains("check the inputs"), "{err}");
}

#[test]
fn existing_run_files_are_not_overwritten_without_the_option() {
    let tmp = tempfile::tempdir().unwrap();
    let d = disks(4, 16, 0.2, 51);
    let data = fixed_batches(&d.images(), Some(&d.sparse_labels(0.0, 1)), 4);
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    let net = tunet(Norm::Batch, 3);
    let mut cfg = config(
        "epochs = 1\ntask = { kind = \"segmentation\", num_classes = 2 }",
        Some(tmp.path()),
    );
    Trainer::new(&cfg, net.as_ref())
        .unwrap()
        .fit(&data, None)
        .unwrap();
    let before = std::fs::read(tmp.path().join("run.csv")).unwrap();
    let e = Trainer::new(&cfg, net.as_ref())
        .unwrap()
        .fit(&data, None)
        .unwrap_err();
    assert!(matches!(e, Error::Exists { .. }), "{e}");
    assert!(e.to_string().contains("overwrite"), "{e}");
    assert_eq!(std::fs::read(tmp.path().join("run.csv")).unwrap(), before);
    cfg.output.as_mut().unwrap().overwrite = true;
    Trainer::new(&cfg, net.as_ref())
        .unwrap()
        .fit(&data, None)
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn accumulating_two_half_batches_equals_one_full_batch() {
    let d = disks(8, 16, 0.3, 61);
    let labels = d.sparse_labels(0.0, 1);
    let text = "epochs = 2\ntask = { kind = \"segmentation\", num_classes = 2 }\noptimizer = { kind = \"sgd\", lr = 0.5 }";
    let run = |batch: usize, accumulate: usize| {
        let net = tunet(Norm::None, 3);
        let mut cfg = config(text, None);
        cfg.accumulate_batches = accumulate;
        let data = fixed_batches(&d.images(), Some(&labels), batch);
        let r = Trainer::new(&cfg, net.as_ref())
            .unwrap()
            .fit(&data, None)
            .unwrap();
        (weights(net.as_ref()), r.history)
    };
    let (full, hf) = run(4, 1);
    let (acc, ha) = run(2, 2);
    assert_eq!(hf[1].steps, 4);
    assert_eq!(ha[1].steps, 4);
    let mut worst = 0f32;
    for ((n, a), (_, b)) in full.iter().zip(&acc) {
        for (x, y) in a.iter().zip(b) {
            worst = worst.max((x - y).abs() / x.abs().max(1e-2));
        }
        assert!(worst < 1e-4, "{n}: {worst}");
    }
    let (lf, la) = (hf[1].train.loss.unwrap(), ha[1].train.loss.unwrap());
    assert!((lf - la).abs() < 1e-5, "{lf} vs {la}");
    // And the weights did move.
    assert_ne!(full, weights(tunet(Norm::None, 3).as_ref()));
}

#[test]
fn ensemble_members_in_threads_equal_sequential_members() {
    let d = disks(4, 16, 0.3, 71);
    let data = fixed_batches(&d.images(), Some(&d.sparse_labels(0.2, 1)), 2);
    let topo = Topology::TuNet(TuNetConfig::new(&[16, 16], 1, 2, 2, 4));
    let cfg = config(
        "epochs = 2\nseed = 3\ntask = { kind = \"segmentation\", num_classes = 2 }",
        None,
    );
    let seq = build_members(&topo, 2, 8, &Device::Cpu).unwrap();
    let thr = build_members(&topo, 2, 8, &Device::Cpu).unwrap();
    let rs = train_ensemble(&cfg, &seq, &data, None, EnsembleMode::Sequential).unwrap();
    let rt = train_ensemble(&cfg, &thr, &data, None, EnsembleMode::Threads).unwrap();
    for k in 0..2 {
        assert_eq!(
            weights(seq[k].as_ref()),
            weights(thr[k].as_ref()),
            "member {k}"
        );
        assert_eq!(times_removed(&rs[k].history), times_removed(&rt[k].history));
    }
    assert_ne!(weights(seq[0].as_ref()), weights(seq[1].as_ref()));
}

#[test]
fn ensemble_members_write_their_own_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let d = disks(2, 16, 0.3, 72);
    let data = fixed_batches(&d.images(), Some(&d.sparse_labels(0.2, 1)), 2);
    let topo = Topology::TuNet(TuNetConfig::new(&[16, 16], 1, 2, 2, 2));
    let cfg = config(
        "epochs = 1\ntask = { kind = \"segmentation\", num_classes = 2 }",
        Some(tmp.path()),
    );
    let nets = build_members(&topo, 2, 1, &Device::Cpu).unwrap();
    train_ensemble(&cfg, &nets, &data, None, EnsembleMode::Threads).unwrap();
    for k in 0..2 {
        let dir = tmp.path().join(format!("member-{k:02}"));
        assert!(dir.join("run.csv").is_file() && dir.join("best/model.json").is_file());
    }
}

#[test]
fn loss_scaler_skips_overflowing_steps_and_backs_off() {
    // A scale of 1e39 is infinite in f32: the first steps overflow and are skipped (without
    // touching the weights) until the halved scale is finite again.
    let d = disks(8, 16, 0.3, 81);
    let data = fixed_batches(&d.images(), Some(&d.sparse_labels(0.0, 1)), 2);
    let net = tunet(Norm::Batch, 3);
    let before = weights(net.as_ref());
    let mut cfg = config(
        "epochs = 2\ntask = { kind = \"segmentation\", num_classes = 2 }\n[loss_scale]\ninit_scale = 1e39",
        None,
    );
    cfg.restore_best = false;
    let r = Trainer::new(&cfg, net.as_ref())
        .unwrap()
        .fit(&data, None)
        .unwrap();
    assert!(r.skipped_steps >= 2, "{}", r.skipped_steps);
    assert_eq!(r.history[1].steps + r.skipped_steps, 8);
    let after = weights(net.as_ref());
    assert_ne!(before, after);
    assert!(after.iter().all(|(_, v)| v.iter().all(|x| x.is_finite())));
    // Without a scaler the same overflow would be an error; here the run learned normally.
    assert!(r.history[1].train.loss.unwrap() < r.history[0].train.loss.unwrap());
}

#[test]
fn early_stopping_ends_a_run_that_stopped_improving() {
    let tmp = tempfile::tempdir().unwrap();
    let d = disks(4, 16, 0.3, 91);
    let data = fixed_batches(&d.images(), Some(&d.sparse_labels(0.0, 1)), 4);
    let net = tunet(Norm::None, 3);
    let cfg = config(
        "epochs = 10\ntask = { kind = \"segmentation\", num_classes = 2 }\noptimizer = { kind = \"sgd\", lr = 1e-9 }\n[early_stopping]\npatience = 2\nmin_delta = 1e-3",
        Some(tmp.path()),
    );
    let r = Trainer::new(&cfg, net.as_ref())
        .unwrap()
        .fit(&data, Some(&data))
        .unwrap();
    assert_eq!(
        (r.stop, r.history.len(), r.best_epoch),
        (StopReason::EarlyStopping, 3, Some(1))
    );
    let kept: Vec<usize> = list_checkpoints(tmp.path())
        .unwrap()
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(kept, vec![2, 3], "the stopping epoch is checkpointed");
}

#[test]
fn networks_and_settings_that_cannot_train_are_refused() {
    let net = tunet(Norm::Batch, 0);
    let e = Trainer::new(
        &TrainConfig::new(1, TaskConfig::segmentation(3)),
        net.as_ref(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("2 output channels for 3 classes"), "{e}");
    let mut cfg = TrainConfig::new(1, TaskConfig::segmentation(2));
    cfg.precision = dlsia_train::Precision::Bf16;
    let e = Trainer::new(&cfg, net.as_ref()).err().unwrap().to_string();
    assert!(e.contains("precision") && e.contains("CPU"), "{e}");
    // Float targets in a segmentation run, and no batches at all.
    let d = disks(2, 16, 0.3, 1);
    let wrong = fixed_batches(&d.images(), Some(&d.clean()), 2);
    let cfg = config(
        "epochs = 1\ntask = { kind = \"segmentation\", num_classes = 2 }",
        None,
    );
    let e = Trainer::new(&cfg, net.as_ref())
        .unwrap()
        .fit(&wrong, None)
        .unwrap_err();
    assert!(e.to_string().contains("integer label"), "{e}");
    let empty: Vec<Batch> = vec![];
    let e = Trainer::new(&cfg, net.as_ref())
        .unwrap()
        .fit(&empty, None)
        .unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
}
