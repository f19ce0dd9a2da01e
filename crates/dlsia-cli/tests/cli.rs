//! End-to-end tests of the `dlsia` binary: the demo, init → train → predict → evaluate on tiny
//! data, import of every fixture (with info and draw), and bad inputs that must give clear
//! errors (never panics, never silent overwrites).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use dlsia_data::io::write_npy;
use dlsia_data::Volume;

fn dlsia() -> Command {
    Command::cargo_bin("dlsia").unwrap()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import")
}

/// Runs `dlsia args…`, expects failure and returns stderr.
fn fails(args: &[&str], dir: &Path) -> String {
    let out = dlsia().args(args).current_dir(dir).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} should fail");
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    err
}

fn ok(args: &[&str], dir: &Path) -> String {
    let out = dlsia().args(args).current_dir(dir).output().unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{args:?} failed:\n{so}\n{se}");
    so.to_string()
}

#[test]
fn demo_quick_writes_a_report_and_refuses_to_overwrite_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = ok(&["demo", "--quick", "--quiet", "--out", "report"], d);
    assert!(out.contains("F1 macro"), "{out}");
    let r = d.join("report");
    for f in [
        "metrics.json",
        "loss.svg",
        "overlay-0-predicted.png",
        "overlay-0-reference.png",
        "uncertainty-0.png",
        "models/member-00/model.json",
        "models/member-02/weights.safetensors",
        "test-image.npy",
        "test-labels.npy",
    ] {
        assert!(r.join(f).is_file(), "missing {f}");
    }
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("metrics.json")).unwrap()).unwrap();
    let f1 = m["test"]["ensemble_mean"]["f1_micro"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&f1));
    assert_eq!(m["training"]["history"][0].as_array().unwrap().len(), 2);
    assert!(fails(&["demo", "--quick", "--quiet", "--out", "report"], d).contains("--force"));
    ok(
        &["demo", "--quick", "--quiet", "--out", "report", "--force"],
        d,
    );
    // The demo's models and test pair work with predict and evaluate.
    ok(
        &[
            "predict",
            "--model",
            "report/models/member-00",
            "--model",
            "report/models/member-01",
            "--input",
            "report/test-image.npy",
            "--output",
            "seg.tif",
            "--std",
            "std.tif",
            "--tile",
            "16",
            "--overlap",
            "0",
            "--quiet",
        ],
        d,
    );
    let e = ok(
        &[
            "evaluate",
            "--labels",
            "report/test-labels.npy",
            "--prediction",
            "seg.tif",
        ],
        d,
    );
    assert!(e.contains("mean_iou"), "{e}");
}

/// Ten 16×16 images whose class is whether the pixel exceeds 0.5, and their labels.
fn tiny_data(d: &Path) {
    let mut state = 12345u64;
    let x: Vec<f32> = (0..10 * 16 * 16)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    let y: Vec<i64> = x.iter().map(|&v| i64::from(v > 0.5)).collect();
    write_npy(
        d.join("images.npy"),
        &Volume::new(vec![10, 16, 16], x).unwrap(),
    )
    .unwrap();
    write_npy(
        d.join("labels.npy"),
        &Volume::new(vec![10, 16, 16], y).unwrap(),
    )
    .unwrap();
    let bad: Vec<i64> = vec![0; 9 * 16 * 16];
    write_npy(
        d.join("labels-9.npy"),
        &Volume::new(vec![9, 16, 16], bad).unwrap(),
    )
    .unwrap();
}

fn tiny_config(d: &Path) {
    ok(&["init", "segmentation", "--out", "run.toml"], d);
    let t = std::fs::read_to_string(d.join("run.toml")).unwrap();
    let t = t
        .replace("images.tif", "images.npy")
        .replace("labels.tif", "labels.npy")
        .replace("image_shape = [256, 256]", "image_shape = [16, 16]")
        .replace("out_channels = 3 ", "out_channels = 2 ")
        .replace("num_classes = 3", "num_classes = 2")
        .replace("epochs = 30", "epochs = 2")
        .replace("depth = 3 ", "depth = 2 ")
        .replace("base_channels = 16", "base_channels = 4")
        .replace("progress = true", "progress = false");
    std::fs::write(d.join("run.toml"), t).unwrap();
}

#[test]
fn train_predict_evaluate_on_tiny_data() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    tiny_data(d);
    tiny_config(d);
    let out = ok(&["train", "--config", "run.toml"], d);
    assert!(out.contains("trained tunet"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("model/model.json")).unwrap())
            .unwrap();
    assert_eq!(meta["metadata"]["task"]["num_classes"], 2);
    assert!(meta["metadata"]["normalization"].is_object());
    assert!(fails(&["train", "--config", "run.toml"], d).contains("--force"));
    ok(&["train", "--config", "run.toml", "--force", "--quiet"], d);

    ok(
        &[
            "predict",
            "--model",
            "model",
            "--input",
            "images.npy",
            "--output",
            "pred.npy",
            "--probabilities",
            "prob.npy",
            "--tile",
            "16",
            "--overlap",
            "0",
            "--quiet",
        ],
        d,
    );
    assert!(fails(
        &[
            "predict",
            "--model",
            "model",
            "--input",
            "images.npy",
            "--output",
            "pred.npy"
        ],
        d
    )
    .contains("--force"));
    let a = ok(
        &[
            "evaluate",
            "--labels",
            "labels.npy",
            "--prediction",
            "pred.npy",
        ],
        d,
    );
    let b = ok(
        &[
            "evaluate",
            "--labels",
            "labels.npy",
            "--model",
            "model",
            "--input",
            "images.npy",
            "--json",
            "scores.json",
        ],
        d,
    );
    // Tiled prediction (one window per image) and whole-image evaluation agree.
    let acc = |s: &str| {
        s.lines()
            .find(|l| l.contains("accuracy"))
            .unwrap()
            .to_string()
    };
    assert_eq!(acc(&a), acc(&b));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("scores.json")).unwrap()).unwrap();
    assert_eq!(j["scores"]["pixels"], 2560);
    let e = fails(
        &[
            "evaluate",
            "--labels",
            "labels-9.npy",
            "--prediction",
            "pred.npy",
        ],
        d,
    );
    assert!(e.contains("same shape"), "{e}");
}

#[test]
fn bad_training_inputs_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    tiny_data(d);
    tiny_config(d);
    let t = std::fs::read_to_string(d.join("run.toml")).unwrap();
    std::fs::write(d.join("typo.toml"), t.replace("batch_size", "batchsize")).unwrap();
    assert!(fails(&["train", "--config", "typo.toml"], d).contains("unknown field `batchsize`"));
    std::fs::write(d.join("epochs.toml"), t.replace("epochs = 2", "epochs = 0")).unwrap();
    assert!(fails(&["train", "--config", "epochs.toml"], d).contains("epochs"));
    std::fs::write(
        d.join("shape.toml"),
        t.replace("labels.npy", "labels-9.npy"),
    )
    .unwrap();
    assert!(fails(&["train", "--config", "shape.toml"], d).contains("same shape"));
    std::fs::write(
        d.join("missing.toml"),
        t.replace("images.npy", "nothing.npy"),
    )
    .unwrap();
    assert!(fails(&["train", "--config", "missing.toml"], d).contains("no such file"));
    std::fs::write(d.join("corrupt.tif"), b"II*\0garbage that is not a TIFF").unwrap();
    std::fs::write(
        d.join("corrupt.toml"),
        t.replace("images.npy", "corrupt.tif"),
    )
    .unwrap();
    let e = fails(&["train", "--config", "corrupt.toml"], d);
    assert!(e.contains("corrupt.tif"), "{e}");
    std::fs::write(
        d.join("classes.toml"),
        t.replace("num_classes = 2", "num_classes = 3"),
    )
    .unwrap();
    // A 2-channel network cannot learn 3 classes: the task and the topology disagree.
    assert!(!fails(&["train", "--config", "classes.toml"], d).is_empty());
    assert!(fails(&["train", "--config", "absent.toml"], d).contains("absent.toml"));
    assert!(fails(&["init", "--out", "run.toml"], d).contains("--force"));
    let e = fails(
        &[
            "predict",
            "--model",
            "nomodel",
            "--input",
            "images.npy",
            "--output",
            "x.tif",
        ],
        d,
    );
    assert!(e.contains("nomodel"), "{e}");
}

#[test]
fn import_info_and_draw_every_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for name in [
        "msdnet_2d",
        "msdnet_3d",
        "msdnet_custom",
        "smsnet_2d",
        "smsnet_3d",
        "tunet_2d",
        "tunet_3d",
        "tunet_rates",
        "tunet3plus_2d",
        "tunet3plus_convt",
    ] {
        let src = fixtures().join(format!("{name}.pt"));
        let src = src.to_str().unwrap();
        let out = ok(&["import", src, "--out", name], d);
        assert!(out.contains("imported"), "{name}: {out}");
        assert!(d.join(name).join("weights.safetensors").is_file());
        let info = ok(&["info", name], d);
        assert!(info.contains("parameters"), "{name}: {info}");
        let svg = format!("{name}.svg");
        ok(&["draw", name, "--out", &svg], d);
        let text = std::fs::read_to_string(d.join(&svg)).unwrap();
        assert!(text.contains("<svg"), "{name}");
        assert!(fails(&["import", src, "--out", name], d).contains("--force"));
    }
    let e = fails(&["import", "nothing.pt", "--out", "x"], d);
    assert!(e.contains("nothing.pt"), "{e}");
    let bad = fixtures().join("bad/msdnet_prelu.pt");
    assert!(fails(&["import", bad.to_str().unwrap(), "--out", "p"], d).contains("PReLU"));
}

#[test]
fn unknown_or_unavailable_devices_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(
        &["demo", "--quick", "--quiet", "--device", "tpu"],
        dir.path(),
    );
    assert!(err.contains("tpu"), "{err}");
    if !cfg!(feature = "cuda") {
        let err = fails(
            &["demo", "--quick", "--quiet", "--device", "cuda:0"],
            dir.path(),
        );
        assert!(err.contains("cuda"), "{err}");
    }
    // predict and evaluate parse --device before touching any file.
    let predict = [
        "predict", "--model", "m", "--input", "x.npy", "--output", "y.npy", "--device",
    ];
    let evaluate = [
        "evaluate",
        "--labels",
        "l.npy",
        "--prediction",
        "p.npy",
        "--device",
    ];
    for cmd in [&predict[..], &evaluate[..]] {
        let err = fails(&[cmd, &["gpu7"]].concat(), dir.path());
        assert!(err.contains("unknown device `gpu7`"), "{cmd:?}: {err}");
        if !cfg!(feature = "cuda") {
            let err = fails(&[cmd, &["cuda:1"]].concat(), dir.path());
            assert!(err.contains("built without CUDA support"), "{cmd:?}: {err}");
        }
    }
}
