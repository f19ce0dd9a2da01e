"""Fixtures for dlsia-ops: PyTorch's results for the ops and layers dlsia uses.

Run with the peer venv (torch + safetensors):
    /root/.cache/dlsia-peer/venv/bin/python tools/ops_fixtures.py
Writes crates/dlsia-ops/tests/fixtures/ops_torch.safetensors (float64 inputs and outputs;
gradients are of L = sum(y * g) for a stored random g).
"""
import os
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(1234)
torch.set_default_dtype(torch.float64)
out = {}


def put(prefix, **tensors):
    for k, v in tensors.items():
        out[f"{prefix}.{k}"] = v.detach().clone().contiguous()


def grads(prefix, y, *inputs, names):
    g = torch.randn_like(y)
    (y * g).sum().backward()
    put(prefix, g=g, y=y)
    for name, t in zip(names, inputs):
        put(prefix, **{f"d{name}": t.grad})


# conv2d, per-axis stride/padding/dilation, bias
x = torch.randn(2, 3, 9, 10, requires_grad=True)
w = torch.randn(4, 3, 3, 3, requires_grad=True)
b = torch.randn(4, requires_grad=True)
put("conv2d", x=x, w=w, b=b)
grads("conv2d", F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2)), x, w, b, names="xwb")

# conv2d with reflect padding (SMSNet), dilation 2, through nn.Conv2d
conv = nn.Conv2d(2, 3, 3, padding=2, dilation=2, padding_mode="reflect")
x = torch.randn(1, 2, 8, 7, requires_grad=True)
put("conv2d_reflect", x=x, w=conv.weight, b=conv.bias)
grads("conv2d_reflect", conv(x), x, names="x")

# conv3d, per-axis stride, groups 2
x = torch.randn(1, 4, 5, 6, 7, requires_grad=True)
w = torch.randn(6, 2, 3, 3, 3, requires_grad=True)
put("conv3d", x=x, w=w)
grads("conv3d", F.conv3d(x, w, stride=(1, 2, 1), padding=1, groups=2), x, w, names="xw")

# conv_transpose2d with per-axis output padding (TUNet on odd sizes)
x = torch.randn(2, 4, 5, 6, requires_grad=True)
w = torch.randn(4, 3, 3, 3, requires_grad=True)
put("convt2d", x=x, w=w)
grads("convt2d", F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=(1, 0)), x, w, names="xw")

# conv_transpose3d kernel 2 stride 2, bias
x = torch.randn(1, 4, 3, 4, 5, requires_grad=True)
w = torch.randn(4, 2, 2, 2, 2, requires_grad=True)
b = torch.randn(2, requires_grad=True)
put("convt3d", x=x, w=w, b=b)
grads("convt3d", F.conv_transpose3d(x, w, b, stride=2), x, w, b, names="xwb")

# max pooling with ties (values rounded to a coarse grid), overlapping windows and padding
x = (torch.randn(2, 3, 9, 8) * 2).round().requires_grad_()
put("maxpool2d", x=x)
grads("maxpool2d", F.max_pool2d(x, 3, stride=2, padding=1), x, names="x")
x = (torch.randn(1, 2, 5, 6, 7) * 2).round().requires_grad_()
put("maxpool3d", x=x)
grads("maxpool3d", F.max_pool3d(x, (2, 3, 2), stride=(2, 1, 2), padding=(1, 1, 0)), x, names="x")

# nearest upsampling to fixed sizes and by a factor
x = torch.randn(1, 2, 5, 7)
put("up2d", x=x, y=F.interpolate(x, size=(13, 3), mode="nearest"))
x = torch.randn(1, 1, 3, 4, 5)
put("up3d", x=x, y=nn.Upsample(size=(7, 9, 11), mode="nearest")(x))
x = torch.randn(1, 2, 4, 5)
put("upscale", x=x, y=nn.Upsample(scale_factor=3, mode="nearest")(x))

# BatchNorm2d / BatchNorm3d: two training steps, then eval; gradient of the first step
for name, bn, shape in [("bn2d", nn.BatchNorm2d(3), (4, 3, 5, 6)), ("bn3d", nn.BatchNorm3d(2), (2, 2, 3, 4, 5))]:
    with torch.no_grad():
        bn.weight.copy_(torch.randn(bn.num_features))
        bn.bias.copy_(torch.randn(bn.num_features))
    x1 = torch.randn(*shape, requires_grad=True)
    x2 = torch.randn(*shape) * 3 + 1
    x3 = torch.randn(*shape)
    put(name, weight=bn.weight, bias=bn.bias, x1=x1, x2=x2, x3=x3)
    bn.train()
    y1 = bn(x1)
    grads(name, y1, x1, bn.weight, bn.bias, names=["x1", "weight", "bias"])
    put(name, y2=bn(x2))
    bn.eval()
    put(name, y3=bn(x3), running_mean=bn.running_mean, running_var=bn.running_var)
    out[f"{name}.num_batches_tracked"] = bn.num_batches_tracked.clone()

# BatchNorm without running statistics (SMSNet LinearReLU): batch stats in eval too
bn = nn.BatchNorm2d(3, track_running_stats=False)
bn.eval()
x = torch.randn(2, 3, 4, 4)
put("bn_nostats", x=x, y=bn(x))

# GroupNorm and InstanceNorm3d(affine, running stats)
gn = nn.GroupNorm(2, 4)
with torch.no_grad():
    gn.weight.copy_(torch.randn(4))
    gn.bias.copy_(torch.randn(4))
x = torch.randn(2, 4, 3, 5)
put("gn", x=x, weight=gn.weight, bias=gn.bias, y=gn(x))
inn = nn.InstanceNorm3d(3, affine=True, track_running_stats=True)
with torch.no_grad():
    inn.weight.copy_(torch.randn(3))
    inn.bias.copy_(torch.randn(3))
x1 = torch.randn(2, 3, 3, 4, 5) * 2 + 0.5
x2 = torch.randn(2, 3, 3, 4, 5)
inn.train()
y1 = inn(x1)
inn.eval()
put("inorm", x1=x1, x2=x2, weight=inn.weight, bias=inn.bias, y1=y1, y2=inn(x2),
    running_mean=inn.running_mean, running_var=inn.running_var)

# Linear on a 3-D input
lin = nn.Linear(5, 4)
x = torch.randn(2, 3, 5)
put("linear", x=x, weight=lin.weight, bias=lin.bias, y=lin(x))

# Activations
x = torch.linspace(-4, 4, 17)
put("act", x=x, gelu=nn.GELU()(x), elu=nn.ELU(0.7)(x), leaky=nn.LeakyReLU(0.2)(x), silu=nn.SiLU()(x),
    sigmoid=torch.sigmoid(x), tanh=torch.tanh(x))
x = torch.randn(2, 3, 2, 2)
put("softmax", x=x, y=nn.Softmax(dim=1)(x))

path = os.path.join(os.path.dirname(__file__), "..", "crates", "dlsia-ops", "tests", "fixtures", "ops_torch.safetensors")
os.makedirs(os.path.dirname(path), exist_ok=True)
save_file(out, path)
print(f"wrote {len(out)} tensors to {os.path.normpath(path)} ({os.path.getsize(path)} bytes)")
