//! The public labelling gives the same labels on 1, 2 and 3 threads (volumes large enough to be
//! split into z-blocks), and slab-wise labelling of the same volume agrees.

use dlsia_analysis::ccl::{connected_components, label_slabs, Connectivity, SlabOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn thread_count_and_slabs_do_not_change_the_labels() {
    let shape = [64, 64, 96];
    let n: usize = shape.iter().product();
    let mut rng = StdRng::seed_from_u64(9);
    // Runs along x of random values: long components crossing every block boundary.
    let mut v = vec![0u16; n];
    let mut i = 0;
    while i < n {
        let run = rng.random_range(1..40);
        let value = if rng.random_bool(0.3) {
            0
        } else {
            rng.random_range(1..4)
        };
        for x in v.iter_mut().skip(i).take(run) {
            *x = value;
        }
        i += run;
    }
    for c in [Connectivity::Six, Connectivity::TwentySix] {
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let reference = one.install(|| connected_components(&v, &shape, c)).unwrap();
        assert!(reference.n_components() > 100);
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let got = pool
                .install(|| connected_components(&v, &shape, c))
                .unwrap();
            assert_eq!(got, reference, "{c:?} with {threads} threads");
        }
        let plane = 64 * 96;
        let mut out = vec![0u32; n];
        let res = label_slabs(
            shape,
            &SlabOptions {
                connectivity: c,
                ..SlabOptions::new(7)
            },
            |z0, buf: &mut [u16]| {
                buf.copy_from_slice(&v[z0 * plane..z0 * plane + buf.len()]);
                Ok::<(), std::convert::Infallible>(())
            },
            |z0, lab| {
                out[z0 * plane..z0 * plane + lab.len()].copy_from_slice(lab);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(res.n_components, reference.n_components());
        assert_eq!(&out[..], reference.labels());
    }
}
