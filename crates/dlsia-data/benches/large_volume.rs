//! Tiled identity pass over an N³ uint16 volume stored as a memory-mapped `.npy` file (default
//! N = 1024: a 2 GiB file), streamed to a `.npy` output; prints throughput and peak resident
//! memory. Files go to $DLSIA_BENCH_DIR (default /tmp) and are deleted afterwards.
//!
//!     cargo bench -p dlsia-data --bench large_volume
//!     DLSIA_BENCH_N=512 cargo bench -p dlsia-data --bench large_volume

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

use candle_core::Device;
use dlsia_data::io::{npy_info, NpyMap};
use dlsia_data::tiling::{run_tiled, Blend, NpyVolumeReader, NpyVolumeWriter, TileConfig};
use dlsia_data::SampleType;

fn status(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn value(i: usize) -> u16 {
    (i.wrapping_mul(2654435761) >> 7) as u16
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("DLSIA_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = std::env::var("DLSIA_BENCH_DIR").unwrap_or_else(|_| "/tmp".into());
    let src = format!("{dir}/dlsia_bench_in_{n}.npy");
    let dst = format!("{dir}/dlsia_bench_out_{n}.npy");
    // Write the input plane by plane.
    {
        let mut f = BufWriter::new(File::create(&src)?);
        let mut header = Vec::new();
        write_header(&mut header, n)?;
        f.write_all(&header)?;
        let mut plane = Vec::with_capacity(n * n * 2);
        for z in 0..n {
            plane.clear();
            for i in z * n * n..(z + 1) * n * n {
                plane.extend_from_slice(&value(i).to_le_bytes());
            }
            f.write_all(&plane)?;
        }
        f.flush()?;
    }
    assert_eq!(npy_info(&src)?.shape, vec![n, n, n]);
    // Reset the peak-RSS counter so that only the tiled pass is measured.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss0 = status("VmRSS:");
    let cfg = TileConfig::new(64, 48, 0)
        .with_blend(Blend::Uniform)
        .with_batch_size(8)
        .with_progress(true);
    let t0 = Instant::now();
    let mut reader = NpyVolumeReader::open(&src)?;
    let mut writer = NpyVolumeWriter::create(&dst, SampleType::U16);
    let stats = run_tiled(&mut reader, &mut writer, &cfg, &Device::Cpu, |x| {
        Ok(x.clone())
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let hwm = status("VmHWM:");
    drop(reader);
    // Verify every voxel (streaming, outside the measurement).
    let out = NpyMap::open(&dst)?;
    let mut buf = vec![0f32; n * n];
    let mut bad = 0usize;
    for z in 0..n {
        out.read_box_f32(&[z, 0, 0], &[1, n, n], &mut buf)?;
        for (k, v) in buf.iter().enumerate() {
            if *v != value(z * n * n + k) as f32 {
                bad += 1;
            }
        }
        out.release(0, usize::MAX);
    }
    let _ = std::fs::remove_file(&src);
    let _ = std::fs::remove_file(&dst);
    println!(
        "tiled identity {n}^3 u16 (.npy mmap -> .npy), window 64 step 48 uniform, batch 8: {} windows in {secs:.1} s = {:.1} Mvoxel/s; peak RSS {:.0} MiB (RSS before the pass {:.0} MiB); mismatched voxels: {bad}",
        stats.windows,
        (n * n * n) as f64 / secs / 1e6,
        hwm as f64 / 1024.0,
        rss0 as f64 / 1024.0,
    );
    anyhow::ensure!(bad == 0, "{bad} voxels differ");
    Ok(())
}

fn write_header(out: &mut Vec<u8>, n: usize) -> anyhow::Result<()> {
    // An .npy v1 header for a C-order little-endian uint16 (n, n, n) array.
    let dict = format!("{{'descr': '<u2', 'fortran_order': False, 'shape': ({n}, {n}, {n}), }}");
    let unpadded = 10 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&((dict.len() + pad + 1) as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    Ok(())
}
