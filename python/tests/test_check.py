import os
import subprocess
import sys

import numpy as np
import pytest

import attnvet
from kernels import window_f64

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def window_case(seed=3, T=24, H=4, Hkv=2, D=16, Dv=8, W=6):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((T, H, D)).astype(np.float32)
    k = rng.standard_normal((T, Hkv, D)).astype(np.float32)
    v = rng.standard_normal((T, Hkv, Dv)).astype(np.float32)
    sink = rng.standard_normal(H).astype(np.float32)
    scale = D ** -0.5
    o = window_f64(q, k, v, sink, W, scale).astype(np.float32)
    return dict(q=q, k=k, v=v, attn_sink=sink, o=o), dict(family="window", window=W, softmax_scale=scale, profile="fp32")


def test_find_binary():
    cmd = attnvet.find_binary()
    r = subprocess.run(cmd + ["version"], capture_output=True, text=True)
    assert r.returncode == 0 and "attnvet" in r.stdout


def test_check_pass_and_fail(tmp_path):
    ts, meta = window_case()
    ok = attnvet.dump(str(tmp_path / "ok.safetensors"), **ts, **meta)
    r = attnvet.check(ok)
    assert r.passed and r.exit == 0 and bool(r), r.message
    (b,) = r.bundles
    assert b["status"] == "pass"
    assert any(v["criterion"] == "bound" and v["gating"] and v["pass"] for v in b["verdicts"])

    bad = dict(ts, o=ts["o"].copy())
    bad["o"][5, 1, 2] *= 1.01  # 1% off: far beyond an FP32 kernel's allowance
    p = attnvet.dump(str(tmp_path / "bad.safetensors"), **bad, **meta)
    r = attnvet.check(p)
    assert not r.passed and r.exit == 1
    assert r.bundles[0]["status"] == "fail"
    assert "bound: 1 of 768 elements beyond the allowance" in r.message
    assert r.replay in r.message and r.replay.startswith("attnvet check ") and p in r.replay
    # The replay command gives the same verdict.
    again = subprocess.run(attnvet.find_binary() + r.replay.split()[1:], capture_output=True, text=True)
    assert again.returncode == 1


def test_check_flags_override_metadata(tmp_path):
    ts, meta = window_case()
    # A window one key shorter declared than computed: fails; the flag fixes the declaration.
    p = attnvet.dump(str(tmp_path / "w.safetensors"), **ts, **dict(meta, window=meta["window"] - 1))
    assert attnvet.check(p).exit == 1
    assert attnvet.check(p, window=meta["window"]).passed


def test_check_bad_bundle(tmp_path):
    ts, meta = window_case()
    p = attnvet.dump(str(tmp_path / "shape.safetensors"), **dict(ts, v=ts["v"][:, :1].copy()), **meta)
    r = attnvet.check(p)
    assert r.exit == 2 and not r.passed
    assert r.bundles[0]["status"] == "invalid"
    assert "tensor v: shape" in r.message
    with pytest.raises(attnvet.AttnvetError):
        attnvet.check(str(tmp_path / "shape.safetensors"), criterion="no-such-criterion")


def test_bf16_numpy_bundle_passes(tmp_path):
    # BF16 inputs from numpy: rounded once to make them, stored as BF16 bits.
    ts, meta = window_case(seed=5)
    q, k, v = (attnvet.round_bf16(ts[n]) for n in "qkv")
    o = window_f64(q, k, v, ts["attn_sink"], meta["window"], meta["softmax_scale"])
    p = attnvet.dump(str(tmp_path / "bf.safetensors"), q=attnvet.bf16(q), k=attnvet.bf16(k), v=attnvet.bf16(v),
                     attn_sink=ts["attn_sink"], o=attnvet.bf16(o, round=True),
                     **dict(meta, profile="bf16rne"))
    r = attnvet.check(p)
    assert r.passed, r.message


def test_torch_bf16_gqa_sink_window_passes(tmp_path):
    torch = pytest.importorskip("torch") if os.environ.get("CI") != "true" else __import__("torch")
    from kernels import window_torch_bf16
    g = torch.Generator().manual_seed(11)
    T, H, Hkv, D, Dv, W = 40, 8, 2, 32, 16, 8
    q = torch.randn(T, H, D, generator=g).to(torch.bfloat16)
    k = torch.randn(T, Hkv, D, generator=g).to(torch.bfloat16)
    v = torch.randn(T, Hkv, Dv, generator=g).to(torch.bfloat16)
    sink = torch.randn(H, generator=g)
    o = window_torch_bf16(q, k, v, sink, W, D ** -0.5)
    p = attnvet.dump(str(tmp_path / "torch.safetensors"), q=q, k=k, v=v, attn_sink=sink, o=o,
                     family="window", window=W, softmax_scale=D ** -0.5, profile="bf16rne")
    r = attnvet.check(p)
    assert r.passed, r.message
    # The same kernel dropping each query's oldest key fails.
    o2 = window_torch_bf16(q, k, v, sink, W - 1, D ** -0.5)
    p2 = attnvet.dump(str(tmp_path / "drop.safetensors"), q=q, k=k, v=v, attn_sink=sink, o=o2,
                      family="window", window=W, softmax_scale=D ** -0.5, profile="bf16rne")
    assert attnvet.check(p2).exit == 1
