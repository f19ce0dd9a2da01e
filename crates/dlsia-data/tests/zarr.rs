//! Zarr (feature `zarr`): round trips for every sample type and a tiled pass reading and writing
//! Zarr arrays.
#![cfg(feature = "zarr")]

use candle_core::Device;
use dlsia_data::io::{read_zarr, write_zarr, ZarrCompression, ZarrVolumeReader, ZarrVolumeWriter};
use dlsia_data::tiling::{run_tiled, TileConfig};
use dlsia_data::{SampleType, Volume};

#[test]
fn round_trip_every_type_and_codec() {
    let dir = tempfile::tempdir().unwrap();
    let shape = vec![5usize, 6, 7];
    let n: usize = 5 * 6 * 7;
    let vols = vec![
        Volume::new(shape.clone(), (0..n).map(|i| i as u8).collect()).unwrap(),
        Volume::new(
            shape.clone(),
            (0..n).map(|i| (i % 100) as i8 - 50).collect(),
        )
        .unwrap(),
        Volume::new(shape.clone(), (0..n).map(|i| (i * 300) as u16).collect()).unwrap(),
        Volume::new(shape.clone(), (0..n).map(|i| i as i16 - 100).collect()).unwrap(),
        Volume::new(shape.clone(), (0..n).map(|i| i as u32 * 70_000).collect()).unwrap(),
        Volume::new(shape.clone(), (0..n).map(|i| -(i as i32)).collect()).unwrap(),
        Volume::new(shape.clone(), (0..n).map(|i| u64::MAX - i as u64).collect()).unwrap(),
        Volume::new(
            shape.clone(),
            (0..n).map(|i| i as i64 - (1 << 50)).collect(),
        )
        .unwrap(),
        Volume::new(shape.clone(), (0..n).map(|i| i as f32 / 3.0).collect()).unwrap(),
        Volume::new(shape.clone(), (0..n).map(|i| -(i as f64) / 7.0).collect()).unwrap(),
    ];
    for (k, v) in vols.iter().enumerate() {
        for (j, comp) in [
            ZarrCompression::None,
            ZarrCompression::Gzip(3),
            ZarrCompression::Zstd(1),
        ]
        .into_iter()
        .enumerate()
        {
            let p = dir.path().join(format!("a{k}_{j}.zarr"));
            write_zarr(&p, v, &[2, 4, 3], comp).unwrap();
            assert_eq!(&read_zarr(&p).unwrap(), v, "{:?} {comp:?}", v.sample_type());
        }
    }
    assert!(read_zarr(dir.path().join("missing.zarr")).is_err());
}

#[test]
fn tiled_pass_zarr_to_zarr_exact_u16() {
    let dir = tempfile::tempdir().unwrap();
    let shape = vec![19usize, 22, 17];
    let n: usize = shape.iter().product();
    let v = Volume::new(
        shape.clone(),
        (0..n).map(|i| (i * 7919 % 65536) as u16).collect(),
    )
    .unwrap();
    let src = dir.path().join("in.zarr");
    write_zarr(&src, &v, &[8, 8, 8], ZarrCompression::Zstd(1)).unwrap();
    let dst = dir.path().join("out.zarr");
    let mut r = ZarrVolumeReader::open(&src).unwrap();
    let mut w = ZarrVolumeWriter::create(&dst, SampleType::U16, &[8]);
    run_tiled(
        &mut r,
        &mut w,
        &TileConfig::new(8, 6, 1).with_batch_size(5),
        &Device::Cpu,
        |x| Ok(x.clone()),
    )
    .unwrap();
    assert_eq!(read_zarr(&dst).unwrap(), v);
    // two output channels keep the channel axis
    let dst2 = dir.path().join("out2.zarr");
    let mut r = ZarrVolumeReader::open(&src).unwrap();
    let mut w = ZarrVolumeWriter::create(&dst2, SampleType::F32, &[8]);
    run_tiled(
        &mut r,
        &mut w,
        &TileConfig::new(8, 6, 1),
        &Device::Cpu,
        |x| Ok(candle_core::Tensor::cat(&[x.clone(), (x + 1.0)?], 1)?),
    )
    .unwrap();
    let o = read_zarr(&dst2).unwrap();
    assert_eq!(o.shape(), &[2, 19, 22, 17]);
    let f = o.to_f32_vec();
    let want = v.to_f32_vec();
    for i in 0..n {
        assert!((f[i] - want[i]).abs() < 0.05 && (f[n + i] - want[i] - 1.0).abs() < 0.05);
    }
}
