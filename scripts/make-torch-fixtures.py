#!/usr/bin/python3
"""Writes the small torch.save fixtures in tests/data/ with genuine PyTorch
(Debian's python3-torch 1.13 is enough: apt-get install python3-torch).

The tests read these files with lib/la-torchzip.c and never need Python or
torch.  Every value follows a formula the C test recomputes:
    float tensors: v[i] = (i - numel/2) * 0.25   (exact in bf16 / f16)
    int tensors:   v[i] = 3*i - 7
where i is the row-major index of the *logical* tensor.

Usage:
    scripts/make-torch-fixtures.py [OUTDIR]     (default tests/data)
    scripts/make-torch-fixtures.py --check FILE  torch.load FILE, print it
"""
import collections
import io
import os
import sys
import zipfile

import torch


def fval(shape, dtype):
    n = 1
    for s in shape:
        n *= s
    return ((torch.arange(n, dtype=torch.float64) - n // 2) * 0.25).reshape(shape).to(dtype)


def ival(shape, dtype):
    n = 1
    for s in shape:
        n *= s
    return (torch.arange(n, dtype=torch.int64) * 3 - 7).reshape(shape).to(dtype)


def main(out):
    os.makedirs(out, exist_ok=True)

    # 1. A module's state_dict (OrderedDict with _metadata -> BUILD), fp32.
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(fval(tuple(p.shape), torch.float32))
    torch.save(m.state_dict(), os.path.join(out, "tz-state-dict-f32.pth"))

    # 2. Every dtype the engine maps, plus a 0-d scalar and an empty tensor.
    d = collections.OrderedDict()
    d["f32"] = fval((2, 3), torch.float32)
    d["bf16"] = fval((3, 5), torch.bfloat16)
    d["f16"] = fval((4,), torch.float16)
    d["f64"] = fval((2, 2), torch.float64)
    d["i64"] = ival((5,), torch.int64)
    d["i32"] = ival((2, 3), torch.int32)
    d["i16"] = ival((3,), torch.int16)
    d["i8"] = ival((3,), torch.int8)
    d["u8"] = (torch.arange(6) * 40).to(torch.uint8).reshape(2, 3)
    d["bool"] = torch.tensor([True, False, True])
    d["scalar"] = torch.tensor(2.5)
    d["empty"] = torch.zeros(0, 3)
    d["five_d"] = fval((1, 2, 1, 2, 3), torch.float32)
    torch.save(d, os.path.join(out, "tz-dtypes.pth"))

    # 3. Shared storage: a transpose (non-contiguous), a row view at a storage
    #    offset, a sliced column (strided) and an nn.Parameter (_rebuild_parameter).
    base = fval((3, 4), torch.float32)
    v = collections.OrderedDict()
    v["base"] = base
    v["transposed"] = base.t()          # [4,3] stride (1,4)
    v["row1"] = base[1]                 # offset 4
    v["col2"] = base[:, 2]              # [3] stride (4,), offset 2
    v["param"] = torch.nn.Parameter(fval((2, 2), torch.float32))
    torch.save(v, os.path.join(out, "tz-views.pth"))

    # 4. Nested dicts: {"state_dict": {...}, "epoch": 3} -> the inner dict,
    #    whose nested "enc" dict flattens to "enc.w".
    n = {"state_dict": {"enc": {"w": fval((2, 2), torch.float32), "b": fval((2,), torch.float32)},
                        "x": fval((3,), torch.bfloat16), "note": "skipped", "layers": [1, 2]},
         "epoch": 3}
    torch.save(n, os.path.join(out, "tz-nested.pth"))

    # 4b. Enough tensors that the memo passes 256 (LONG_BINPUT / LONG_BINGET),
    #     as in every real checkpoint.
    many = collections.OrderedDict()
    for i in range(40):
        many["blocks.%d.w" % i] = fval((2,), torch.float16) + i
    torch.save(many, os.path.join(out, "tz-many.pth"))

    # 4c. Protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL).
    torch.save(d, os.path.join(out, "tz-dtypes-proto4.pth"), pickle_protocol=4)

    # 5. The pre-1.6 format (a bare pickle stream): must be refused clearly.
    torch.save({"w": fval((2,), torch.float32)}, os.path.join(out, "tz-legacy.pth"),
               _use_new_zipfile_serialization=False)

    # 6. Older torch named the top folder after the file, and other zip
    #    writers neither align data nor write zip64 end records: rewrite (1)
    #    with Python's zipfile under the prefix "my_model".
    src = zipfile.ZipFile(os.path.join(out, "tz-state-dict-f32.pth"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr("my_model/" + info.filename.split("/", 1)[1], src.read(info))
    with open(os.path.join(out, "tz-prefix-unaligned.pth"), "wb") as f:
        f.write(buf.getvalue())
    assert torch.load(os.path.join(out, "tz-prefix-unaligned.pth"))["0.weight"].shape == (4, 3)


def check(path):
    obj = torch.load(path)
    for k, t in obj.items():
        print(k, t.dtype, tuple(t.shape), t.flatten()[:6].tolist())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "tests/data")
