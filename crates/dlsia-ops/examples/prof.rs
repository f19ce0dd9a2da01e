#![allow(non_camel_case_types, clippy::all)]
// Scratch profiler (not committed): times conv pieces. usage: prof <case> <reps>
use candle_core::{Device, Tensor, Var};
use dlsia_ops::{conv, max_pool, ConvSpec};
use std::time::Instant;

fn cpu_ms() -> f64 {
    let mut ru: libc_rusage = unsafe { std::mem::zeroed() };
    unsafe { getrusage(0, &mut ru) };
    (ru.utime_s as f64 + ru.stime_s as f64) * 1e3 + (ru.utime_us as f64 + ru.stime_us as f64) / 1e3
}
#[repr(C)]
struct libc_rusage {
    utime_s: i64,
    utime_us: i64,
    stime_s: i64,
    stime_us: i64,
    rest: [i64; 14],
}
extern "C" {
    fn getrusage(who: i32, r: *mut libc_rusage) -> i32;
}

fn t(name: &str, reps: usize, mut f: impl FnMut()) {
    f();
    let mut w = vec![];
    let mut c = vec![];
    for _ in 0..reps {
        let (a, b) = (Instant::now(), cpu_ms());
        f();
        w.push(a.elapsed().as_secs_f64() * 1e3);
        c.push(cpu_ms() - b);
    }
    w.sort_by(f64::total_cmp);
    c.sort_by(f64::total_cmp);
    println!(
        "{name:<40} wall min {:8.1} med {:8.1}   cpu min {:8.1} med {:8.1}",
        w[0],
        w[reps / 2],
        c[0],
        c[reps / 2]
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args.get(1).map(String::as_str).unwrap_or("a");
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    if std::env::var_os("TUNE").is_some() {
        println!("tuned: {}", dlsia_ops::alloc::tune_for_throughput());
    }
    let dev = Device::Cpu;
    let (xs, ws, spec): (Vec<usize>, Vec<usize>, ConvSpec) = match case {
        "a" => (
            vec![4, 16, 256, 256],
            vec![16, 16, 3, 3],
            ConvSpec::uniform(2, 1, 1, 1),
        ),
        "b" => (
            vec![4, 64, 256, 256],
            vec![1, 64, 3, 3],
            ConvSpec::uniform(2, 1, 8, 8),
        ),
        "c" => (
            vec![1, 16, 64, 64, 64],
            vec![16, 16, 3, 3, 3],
            ConvSpec::uniform(3, 1, 1, 1),
        ),
        "d" => (
            vec![1, 32, 64, 64, 64],
            vec![1, 32, 3, 3, 3],
            ConvSpec::uniform(3, 1, 4, 4),
        ),
        "e" => (
            vec![4, 64, 64, 64],
            vec![64, 64, 3, 3],
            ConvSpec::uniform(2, 1, 1, 1),
        ),
        "f" => (
            vec![4, 128, 32, 32],
            vec![128, 128, 3, 3],
            ConvSpec::uniform(2, 1, 1, 1),
        ),
        "g" => (
            vec![1, 32, 32, 32, 32],
            vec![32, 32, 3, 3, 3],
            ConvSpec::uniform(3, 1, 1, 1),
        ),
        "h" => (
            vec![4, 1, 256, 256],
            vec![16, 1, 3, 3],
            ConvSpec::uniform(2, 1, 1, 1),
        ),
        "t" | "n" | "m" => (vec![1], vec![], ConvSpec::uniform(2, 1, 1, 1)),
        "p" => (vec![4, 16, 256, 256], vec![], ConvSpec::uniform(2, 1, 1, 1)),
        "q" => (
            vec![1, 16, 64, 64, 64],
            vec![],
            ConvSpec::uniform(3, 1, 1, 1),
        ),
        _ => panic!("case"),
    };
    let x = Var::from_tensor(&Tensor::randn(0f32, 1., xs.as_slice(), &dev).unwrap()).unwrap();
    if case == "n" || case == "m" {
        use candle_core::ModuleT;
        let dims: Vec<usize> = if case == "n" {
            vec![4, 16, 256, 256]
        } else {
            vec![1, 16, 64, 64, 64]
        };
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., dims.as_slice(), &dev).unwrap()).unwrap();
        let store = dlsia_ops::ParamStore::new(0, &dev);
        let bn = dlsia_ops::nn::BatchNorm::new(&store.root(), 16).unwrap();
        t("bn train fwd", reps, || {
            bn.forward_t(&x.as_tensor().detach(), true).unwrap();
        });
        t("bn train fwd+bwd", reps, || {
            bn.forward_t(x.as_tensor(), true)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
        });
        return;
    }
    if case == "t" {
        let x =
            Var::from_tensor(&Tensor::randn(0f32, 1., (4, 32, 128, 128), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 1., (32, 16, 2, 2), &dev).unwrap()).unwrap();
        let sp = dlsia_ops::ConvTransposeSpec::uniform(2, 2, 0, 0, 1);
        t("convt fwd", reps, || {
            dlsia_ops::conv_transpose(&x.as_tensor().detach(), &w.as_tensor().detach(), None, &sp)
                .unwrap();
        });
        t("convt fwd+bwd", reps, || {
            dlsia_ops::conv_transpose(x.as_tensor(), w.as_tensor(), None, &sp)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
        });
        return;
    }
    if ws.is_empty() {
        let nd = xs.len() - 2;
        let (k, s, p) = (vec![2; nd], vec![2; nd], vec![0; nd]);
        t("pool fwd", reps, || {
            max_pool(x.as_tensor(), &k, &s, &p).unwrap();
        });
        t("pool fwd+bwd", reps, || {
            max_pool(x.as_tensor(), &k, &s, &p)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
        });
        return;
    }
    let w =
        Var::from_tensor(&(Tensor::randn(0f32, 1., ws.as_slice(), &dev).unwrap() * 0.1).unwrap())
            .unwrap();
    let y = conv(x.as_tensor(), w.as_tensor(), None, &spec).unwrap();
    let g = Tensor::randn(0f32, 1., y.dims(), &dev).unwrap();
    let xt = x.as_tensor().detach();
    let wt = w.as_tensor().detach();
    if std::env::var_os("SUM_ONLY").is_none() {
        t("fwd", reps, || {
            conv(&xt, &wt, None, &spec).unwrap();
        });
    }
    if std::env::var_os("FWD_ONLY").is_some() {
        return;
    }
    if std::env::var_os("SUM_ONLY").is_some() {
        t("fwd+bwd (sum)", reps, || {
            conv(x.as_tensor(), w.as_tensor(), None, &spec)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
        });
        return;
    }
    t("fwd+bwd (y*g)", reps, || {
        (conv(x.as_tensor(), w.as_tensor(), None, &spec).unwrap() * &g)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
    });
    t("fwd+bwd (sum)", reps, || {
        conv(x.as_tensor(), w.as_tensor(), None, &spec)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
    });
}
