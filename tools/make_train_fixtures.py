"""Fixtures for dlsia-train: PyTorch's optimizers, LR schedulers and gradient clipping on small,
fixed inputs, written to crates/dlsia-train/tests/fixtures/torch_train.json.

Run with the peer venv (torch CPU):
    /root/.cache/dlsia-peer/venv/bin/python tools/make_train_fixtures.py
"""
import json
import pathlib

import torch

torch.manual_seed(0)
OUT = pathlib.Path(__file__).resolve().parents[1] / "crates/dlsia-train/tests/fixtures/torch_train.json"


def tolist(t):
    return t.detach().double().flatten().tolist()


def optimizer_case(name, make, steps=6):
    g = torch.Generator().manual_seed(1)
    p0 = torch.randn(3, 4, generator=g)
    grads = [torch.randn(3, 4, generator=g) for _ in range(steps)]
    p = torch.nn.Parameter(p0.clone())
    opt = make([p])
    params = []
    for gr in grads:
        opt.zero_grad()
        p.grad = gr.clone()
        opt.step()
        params.append(tolist(p))
    return {
        "name": name,
        "shape": [3, 4],
        "p0": tolist(p0),
        "grads": [tolist(x) for x in grads],
        "params": params,
    }


def lr_sequence(make_sched, n, metric=None, betas=False):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9) if not betas else torch.optim.Adam([p], lr=0.1)
    sched = make_sched(opt)
    lrs, moms = [], []
    for i in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        if betas:
            moms.append(opt.param_groups[0]["betas"][0])
        opt.step()
        if metric is None:
            sched.step()
        else:
            sched.step(metric[i])
    out = {"lrs": lrs}
    if betas:
        out["momentum"] = moms
    return out


def main():
    cases = [
        optimizer_case("adam", lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1)),
        optimizer_case("adamw", lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
        optimizer_case("sgd", lambda ps: torch.optim.SGD(ps, lr=0.1)),
        optimizer_case(
            "sgd_momentum",
            lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
        ),
        optimizer_case(
            "sgd_nesterov",
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02),
        ),
    ]
    L = torch.optim.lr_scheduler
    plateau_metric = [1.0, 0.9, 0.95, 0.91, 0.92, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.4, 0.45, 0.45, 0.45]
    schedules = {
        "step": lr_sequence(lambda o: L.StepLR(o, step_size=3, gamma=0.5), 10),
        "multi_step": lr_sequence(lambda o: L.MultiStepLR(o, milestones=[2, 5, 7], gamma=0.3), 10),
        "exponential": lr_sequence(lambda o: L.ExponentialLR(o, gamma=0.9), 10),
        "cosine_warmup": lr_sequence(
            lambda o: L.SequentialLR(
                o,
                [L.LinearLR(o, start_factor=0.25, total_iters=3), L.CosineAnnealingLR(o, T_max=7, eta_min=0.001)],
                milestones=[3],
            ),
            10,
        ),
        "one_cycle": lr_sequence(lambda o: L.OneCycleLR(o, max_lr=0.1, total_steps=20), 20, betas=True),
        "one_cycle_three_linear": lr_sequence(
            lambda o: L.OneCycleLR(o, max_lr=0.2, total_steps=17, pct_start=0.25, anneal_strategy="linear",
                                   three_phase=True, div_factor=10.0, final_div_factor=100.0),
            17,
            betas=True,
        ),
        "plateau": dict(
            lr_sequence(lambda o: L.ReduceLROnPlateau(o, factor=0.5, patience=2, threshold=0.01, cooldown=1),
                        len(plateau_metric), metric=plateau_metric),
            metric=plateau_metric,
        ),
    }
    g = torch.Generator().manual_seed(2)
    grads = [torch.randn(5, generator=g) * 3, torch.randn(2, 3, generator=g)]
    clip = {"grads": [tolist(x) for x in grads], "shapes": [[5], [2, 3]]}
    a = [x.clone().requires_grad_() for x in grads]
    for x, gr in zip(a, grads):
        x.grad = gr.clone()
    clip["norm_before"] = float(torch.nn.utils.clip_grad_norm_(a, max_norm=1.5))
    clip["norm_clipped"] = [tolist(x.grad) for x in a]
    for x, gr in zip(a, grads):
        x.grad = gr.clone()
    torch.nn.utils.clip_grad_value_(a, clip_value=0.7)
    clip["value_clipped"] = [tolist(x.grad) for x in a]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"torch": torch.__version__, "optimizers": cases, "schedules": schedules,
                               "clip": clip}, indent=1) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
