//! HDF5 (feature `hdf5`, needs libhdf5): round trips by dataset path, errors for missing
//! datasets, and a tiled pass reading and writing HDF5.
#![cfg(feature = "hdf5")]

use candle_core::Device;
use dlsia_data::io::{read_hdf5, write_hdf5, Hdf5VolumeReader, Hdf5VolumeWriter};
use dlsia_data::tiling::{run_tiled, TileConfig};
use dlsia_data::{SampleType, Volume};

#[test]
fn round_trip_by_path_every_type() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.h5");
    let shape = vec![3usize, 4, 5];
    let n: usize = 60;
    let vols = vec![
        (
            "/u8",
            Volume::new(shape.clone(), (0..n).map(|i| i as u8).collect()).unwrap(),
        ),
        (
            "/g/i8",
            Volume::new(shape.clone(), (0..n).map(|i| i as i8 - 30).collect()).unwrap(),
        ),
        (
            "/g/u16",
            Volume::new(shape.clone(), (0..n).map(|i| i as u16 * 1000).collect()).unwrap(),
        ),
        (
            "/g/h/i16",
            Volume::new(shape.clone(), (0..n).map(|i| -(i as i16)).collect()).unwrap(),
        ),
        (
            "/u32",
            Volume::new(shape.clone(), (0..n).map(|i| i as u32 * 100_000).collect()).unwrap(),
        ),
        (
            "/i32",
            Volume::new(shape.clone(), (0..n).map(|i| i as i32 - 7).collect()).unwrap(),
        ),
        (
            "/u64",
            Volume::new(shape.clone(), (0..n).map(|i| u64::MAX - i as u64).collect()).unwrap(),
        ),
        (
            "/i64",
            Volume::new(
                shape.clone(),
                (0..n).map(|i| i as i64 - (1 << 40)).collect(),
            )
            .unwrap(),
        ),
        (
            "/exchange/data",
            Volume::new(shape.clone(), (0..n).map(|i| i as f32 * 0.5).collect()).unwrap(),
        ),
        (
            "/f64",
            Volume::new(shape.clone(), (0..n).map(|i| i as f64 / 3.0).collect()).unwrap(),
        ),
    ];
    for (name, v) in &vols {
        write_hdf5(&p, name, v).unwrap();
    }
    for (name, v) in &vols {
        assert_eq!(&read_hdf5(&p, name).unwrap(), v, "{name}");
    }
    let e = read_hdf5(&p, "/nope").unwrap_err().to_string();
    assert!(e.contains("/nope") && e.contains("a.h5"), "{e}");
    std::fs::write(dir.path().join("bad.h5"), b"not an hdf5 file at all").unwrap();
    assert!(read_hdf5(dir.path().join("bad.h5"), "/x").is_err());
}

#[test]
fn tiled_pass_hdf5_exact_u16() {
    let dir = tempfile::tempdir().unwrap();
    let shape = vec![13usize, 20, 18];
    let n: usize = shape.iter().product();
    let v = Volume::new(
        shape.clone(),
        (0..n).map(|i| (i * 7919 % 65536) as u16).collect(),
    )
    .unwrap();
    let src = dir.path().join("in.h5");
    write_hdf5(&src, "/vol", &v).unwrap();
    let dst = dir.path().join("out.h5");
    let mut r = Hdf5VolumeReader::open(&src, "/vol").unwrap();
    let mut w = Hdf5VolumeWriter::create(&dst, "/seg/out", SampleType::U16);
    run_tiled(
        &mut r,
        &mut w,
        &TileConfig::new(8, 5, 1),
        &Device::Cpu,
        |x| Ok(x.clone()),
    )
    .unwrap();
    assert_eq!(read_hdf5(&dst, "/seg/out").unwrap(), v);
}
