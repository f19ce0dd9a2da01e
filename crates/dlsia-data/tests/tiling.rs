//! Tiling: identity reproduces the input for every window/step/border combination (2-D and 3-D,
//! sizes not divisible by the step), blending matches a naive f64 reference, streaming writers
//! produce the same result as memory, and the channel count may change.

use candle_core::{Device, Tensor};
use dlsia_data::io::{read_npy, read_tiff, write_npy, write_tiff};
use dlsia_data::tiling::{
    extract_windows, run_tiled, stitch_windows, ArgmaxWriter, ArrayReader, Blend, MemoryWriter,
    NpyVolumeReader, NpyVolumeWriter, TiffVolumeReader, TiffVolumeWriter, TileConfig, Tiler,
};
use dlsia_data::{SampleType, Volume, VolumeData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_volume(shape: &[usize], seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..shape.iter().product::<usize>())
        .map(|_| rng.random_range(0.0f32..1000.0))
        .collect()
}

fn identity_pass(shape: &[usize], cfg: &TileConfig) -> (Vec<f32>, Vec<f32>) {
    let data = random_volume(shape, 1);
    let mut reader = ArrayReader::new(shape.to_vec(), data.clone()).unwrap();
    let mut writer = MemoryWriter::new();
    let stats = run_tiled(&mut reader, &mut writer, cfg, &Device::Cpu, |x| {
        Ok(x.clone())
    })
    .unwrap();
    assert_eq!(writer.shape(), shape);
    assert_eq!(stats.out_channels, shape[0]);
    (data, writer.data().to_vec())
}

fn assert_close(a: &[f32], b: &[f32], rel: f32, ctx: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= rel * x.abs().max(1.0),
            "{ctx}: index {i}: {x} vs {y}"
        );
    }
}

#[test]
fn identity_2d_all_combinations() {
    for (h, w) in [(37, 50), (16, 16), (5, 70)] {
        for (win, step, border) in [
            (16, 16, 0),
            (16, 12, 0),
            (16, 9, 3),
            (8, 1, 0),
            (16, 8, 4),
            (32, 20, 5),
        ] {
            for blend in [Blend::Uniform, Blend::default()] {
                for batch in [1, 5] {
                    let cfg = TileConfig::new(win, step, border)
                        .with_blend(blend)
                        .with_batch_size(batch);
                    let (a, b) = identity_pass(&[2, h, w], &cfg);
                    assert_close(
                        &a,
                        &b,
                        2e-6,
                        &format!("{h}x{w} w{win} s{step} b{border} {blend:?}"),
                    );
                }
            }
        }
    }
}

#[test]
fn identity_3d_all_combinations() {
    for shape in [[1, 21, 18, 25], [1, 8, 8, 8], [2, 13, 30, 9]] {
        for (win, step, border) in [(8, 8, 0), (8, 5, 0), (8, 4, 2), (12, 7, 1)] {
            for blend in [
                Blend::Uniform,
                Blend::Gaussian {
                    sigma_fraction: 0.2,
                },
            ] {
                let cfg = TileConfig::new(win, step, border)
                    .with_blend(blend)
                    .with_batch_size(3);
                let (a, b) = identity_pass(&shape, &cfg);
                assert_close(&a, &b, 2e-6, &format!("{shape:?} w{win} s{step} b{border}"));
            }
        }
    }
}

#[test]
fn anisotropic_windows_and_1d() {
    let mut cfg = TileConfig::new(8, 6, 1);
    cfg.window = vec![4, 8, 16];
    cfg.step = vec![3, 5, 9];
    cfg.border = vec![0, 1, 2];
    let (a, b) = identity_pass(&[1, 11, 19, 40], &cfg);
    assert_close(&a, &b, 2e-6, "anisotropic");
    let (a, b) = identity_pass(&[3, 100], &TileConfig::new(16, 10, 2));
    assert_close(&a, &b, 2e-6, "1-D");
}

/// The stitched value of a closure that paints window `i` with the constant `i` must be the
/// weighted mean of the indices of the windows covering each voxel, computed here in f64 from
/// the per-axis weights alone.
#[test]
fn blending_matches_naive_reference() {
    let shape = [1usize, 23, 17];
    for cfg in [
        TileConfig::new(8, 5, 1).with_blend(Blend::Gaussian {
            sigma_fraction: 0.25,
        }),
        TileConfig::new(8, 3, 2).with_blend(Blend::Uniform),
    ] {
        let tiler = Tiler::new(&shape[1..], &cfg).unwrap();
        let vol = Tensor::zeros(&shape, candle_core::DType::F32, &Device::Cpu).unwrap();
        let (wins, tiler2) = extract_windows(&vol, &cfg).unwrap();
        let n = wins.dims()[0];
        let painted = Tensor::arange(0f32, n as f32, &Device::Cpu)
            .unwrap()
            .reshape((n, 1, 1, 1))
            .unwrap()
            .broadcast_as(wins.shape())
            .unwrap()
            .contiguous()
            .unwrap();
        let out: Vec<f32> = stitch_windows(&painted, &tiler2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let mut num = vec![0f64; 23 * 17];
        let mut den = vec![0f64; 23 * 17];
        for w in tiler.windows() {
            let wy = tiler.weights(0, w.grid[0]);
            let wx = tiler.weights(1, w.grid[1]);
            for (dy, &a) in wy.iter().enumerate() {
                for (dx, &b) in wx.iter().enumerate() {
                    let p = (w.start[0] + dy) * 17 + w.start[1] + dx;
                    num[p] += a as f64 * b as f64 * w.index as f64;
                    den[p] += a as f64 * b as f64;
                }
            }
        }
        for p in 0..num.len() {
            let want = num[p] / den[p];
            assert!(
                (out[p] as f64 - want).abs() < 1e-4 * want.max(1.0),
                "{p}: {} vs {want}",
                out[p]
            );
        }
    }
}

#[test]
fn channel_count_can_change_and_argmax_streams() {
    let shape = [1usize, 9, 20, 14];
    let data = random_volume(&shape, 5);
    let cfg = TileConfig::new(8, 6, 1).with_batch_size(4);
    // three "class scores": x, 2000 - x, 500
    let f = |x: &Tensor| -> dlsia_data::Result<Tensor> {
        let a = x.clone();
        let b = x.affine(-1.0, 2000.0)?;
        let c = (x.zeros_like()? + 500.0)?;
        Ok(Tensor::cat(&[a, b, c], 1)?)
    };
    let mut reader = ArrayReader::new(shape.to_vec(), data.clone()).unwrap();
    let mut writer = MemoryWriter::new();
    run_tiled(&mut reader, &mut writer, &cfg, &Device::Cpu, f).unwrap();
    assert_eq!(writer.shape(), &[3, 9, 20, 14]);
    let n = data.len();
    for (i, &x) in data.iter().enumerate() {
        assert!((writer.data()[i] - x).abs() < 1e-3);
        assert!((writer.data()[n + i] - (2000.0 - x)).abs() < 1e-3);
        assert!((writer.data()[2 * n + i] - 500.0).abs() < 1e-3);
    }
    let mut reader = ArrayReader::new(shape.to_vec(), data.clone()).unwrap();
    let mut am = ArgmaxWriter::new(MemoryWriter::new());
    run_tiled(&mut reader, &mut am, &cfg, &Device::Cpu, f).unwrap();
    let am = am.into_inner();
    assert_eq!(am.shape(), &[1, 9, 20, 14]);
    for (i, &x) in data.iter().enumerate() {
        // x wins above 1000, 2000-x wins below 1000 (500 never wins)
        let want = if x > 1000.0 { 0.0 } else { 1.0 };
        if (x - 1000.0).abs() > 1e-2 {
            assert_eq!(am.data()[i], want, "voxel {i} value {x}");
        }
    }
}

#[test]
fn streaming_npy_and_tiff_round_trip_u16_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let shape = [17usize, 23, 31];
    let mut rng = StdRng::seed_from_u64(9);
    let vals: Vec<u16> = (0..shape.iter().product::<usize>())
        .map(|_| rng.random())
        .collect();
    let vol = Volume::new(shape.to_vec(), vals).unwrap();
    let cfg = TileConfig::new(8, 5, 1).with_batch_size(7);

    let src = dir.path().join("in.npy");
    write_npy(&src, &vol).unwrap();
    let dst = dir.path().join("out.npy");
    let mut reader = NpyVolumeReader::open(&src).unwrap();
    let mut writer = NpyVolumeWriter::create(&dst, SampleType::U16);
    run_tiled(&mut reader, &mut writer, &cfg, &Device::Cpu, |x| {
        Ok(x.clone())
    })
    .unwrap();
    assert_eq!(read_npy(&dst).unwrap(), vol);

    let src = dir.path().join("in.tif");
    write_tiff(&src, &vol).unwrap();
    let dst = dir.path().join("out.tif");
    let mut reader = TiffVolumeReader::open(&src, 8).unwrap();
    let mut writer = TiffVolumeWriter::create(&dst, SampleType::U16);
    run_tiled(&mut reader, &mut writer, &cfg, &Device::Cpu, |x| {
        Ok(x.clone())
    })
    .unwrap();
    assert_eq!(read_tiff(&dst).unwrap(), vol);

    // 2-D TIFF output (held until finish) with two channels
    let img = Volume::new(vec![40, 33], (0..40 * 33).map(|v| v as f32).collect()).unwrap();
    let src = dir.path().join("img.tif");
    write_tiff(&src, &img).unwrap();
    let dst = dir.path().join("img_out.tif");
    let mut reader = TiffVolumeReader::open(&src, 1).unwrap();
    let mut writer = TiffVolumeWriter::create(&dst, SampleType::F32);
    run_tiled(&mut reader, &mut writer, &cfg, &Device::Cpu, |x| {
        Ok(Tensor::cat(&[x.clone(), (x * 2.0)?], 1)?)
    })
    .unwrap();
    let out = read_tiff(&dst).unwrap();
    assert_eq!(out.shape(), &[2, 40, 33]);
    let v = out.to_f32_vec();
    for i in 0..40 * 33 {
        assert!((v[i] - i as f32).abs() < 1e-3 && (v[40 * 33 + i] - 2.0 * i as f32).abs() < 2e-3);
    }
}

#[test]
fn closure_shape_errors_are_reported() {
    let mut reader = ArrayReader::new(vec![1, 20, 20], vec![0.0; 400]).unwrap();
    let mut writer = MemoryWriter::new();
    let r = run_tiled(
        &mut reader,
        &mut writer,
        &TileConfig::new(8, 8, 0),
        &Device::Cpu,
        |x| Ok(x.narrow(2, 0, 4)?),
    );
    assert!(r.is_err());
    let r = run_tiled(
        &mut reader,
        &mut writer,
        &TileConfig::new(8, 8, 0),
        &Device::Cpu,
        |_| Err(dlsia_data::Error::Worker("network failed".into())),
    );
    assert!(r.unwrap_err().to_string().contains("network failed"));
}

#[test]
fn npy_writer_keeps_channel_axis_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("o.npy");
    let mut reader =
        ArrayReader::new(vec![1, 10, 10], (0..100).map(|v| v as f32).collect()).unwrap();
    let mut writer = NpyVolumeWriter::create(&dst, SampleType::F32).keep_channel_axis(true);
    run_tiled(
        &mut reader,
        &mut writer,
        &TileConfig::new(4, 3, 0),
        &Device::Cpu,
        |x| Ok(x.clone()),
    )
    .unwrap();
    let v = read_npy(&dst).unwrap();
    assert_eq!(v.shape(), &[1, 10, 10]);
    let VolumeData::F32(d) = v.data() else {
        panic!()
    };
    assert_close(
        d,
        &(0..100).map(|v| v as f32).collect::<Vec<_>>(),
        1e-6,
        "npy f32",
    );
}
