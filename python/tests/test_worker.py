import io
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

import attnvet
import attnvet.worker
from attnvet.safetensors import decode, encode
from attnvet.worker import Case, declaration

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "window_worker.py")


def frame(meta, tensors=None):
    b = encode(tensors or {}, meta)
    return struct.pack("<Q", len(b)) + b


def read_frame(f):
    n = f.read(8)
    assert len(n) == 8, "worker closed stdout"
    return decode(f.read(struct.unpack("<Q", n)[0]))


def test_protocol_by_hand():
    env = dict(os.environ, WORKER_FAIL_SEQ="3")
    p = subprocess.Popen([sys.executable, WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        p.stdin.write(frame({"request": "hello", "protocol": "1"}))
        p.stdin.flush()
        meta, ts = read_frame(p.stdout)
        assert meta == {"profile": "fp32", "name": "numpy-window-f64"} and ts == {}

        rng = np.random.default_rng(0)
        q = rng.standard_normal((5, 2, 4)).astype(np.float32)
        k = rng.standard_normal((5, 1, 4)).astype(np.float32)
        v = rng.standard_normal((5, 1, 3)).astype(np.float32)
        run = {"request": "run", "seq": "1", "family": "window", "window": "2", "softmax_scale": "0.5"}
        p.stdin.write(frame(run, {"q": q, "k": k, "v": v}))
        p.stdin.write(frame({"request": "run", "seq": "2", "family": "sparse"}, {"q": q}))
        p.stdin.write(frame(dict(run, seq="3"), {"q": q, "k": k, "v": v}))
        p.stdin.flush()
        meta, ts = read_frame(p.stdout)
        assert meta == {} and ts["o"].shape == (5, 2, 3) and ts["o"].dtype == np.float32
        from kernels import window_f64
        np.testing.assert_array_equal(ts["o"], window_f64(q, k, v, None, 2, 0.5).astype(np.float32))
        meta, ts = read_frame(p.stdout)
        assert "window family only" in meta["error"] and ts == {}
        meta, ts = read_frame(p.stdout)
        assert meta == {"error": "RuntimeError: unsupported shape"}
    finally:
        p.stdin.close()
        assert p.wait(timeout=30) == 0  # stdin closed: the worker exits
        err = p.stderr.read().decode()
    assert "a stray print on stdout" in err and "Traceback" in err


def test_declaration():
    assert declaration("bf16", "k") == {"profile": "bf16", "name": "k"}
    assert declaration({"in_dtype": "bf16"}, acc_dtype="fp32", l_from_rounded_p=True) == {
        "in_dtype": "bf16", "acc_dtype": "fp32", "l_from_rounded_p": "true"}
    with pytest.raises(ValueError, match="not a precision key"):
        declaration({"window": "3"})


def test_case_accessors():
    q = np.zeros((2, 4, 16), np.float32)
    c = Case({"family": "window", "seq": "7"}, {"q": q})
    assert (c.family, c.seq, c.window, c.softmax_scale, c.attn_sink) == ("window", 7, 0, 0.25, None)
    assert c.q is q


def test_fuzz_runs_the_served_function():
    """A Python function served by attnvet.worker.serve under attnvet fuzz."""
    cmd = attnvet.find_binary() + ["fuzz", "--family", "window", "--cases", "60", "--seed", "9",
                                   "--target", f"exec:{sys.executable} {WORKER}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"PASS: no failure in \d+ cases", r.stdout), r.stdout
    assert "0 restarts" in r.stdout and "0 reported errors" in r.stdout


DENSE = os.path.join(HERE, "dense_worker.py")


def hello(worker, meta):
    """The hello reply of a worker script and its stderr."""
    p = subprocess.Popen([sys.executable, worker], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdin.write(frame(meta))
    p.stdin.close()
    reply, _ = read_frame(p.stdout)
    assert p.wait(timeout=30) == 0
    return reply, p.stderr.read().decode()


def test_protocol_2_declarations():
    reply, _ = hello(DENSE, {"request": "hello", "protocol": "1", "protocol_max": "2"})
    assert reply == {"protocol": "2", "profile": "fp32", "name": "py-numpy-dense", "families": "dense",
                     "quantized": "fp8,int8_kv,nvfp4_kv,int4_kv"}
    # An attnvet that speaks protocol 1 only gets the profile, and stderr says what was lost.
    reply, err = hello(DENSE, {"request": "hello", "protocol": "1"})
    assert reply == {"profile": "fp32", "name": "py-numpy-dense"}
    assert "protocol 1 only: quantized not declared" in err
    # families alone is a declaration.
    reply, _ = hello(WORKER, {"request": "hello", "protocol": "1", "protocol_max": "2"})
    assert reply == {"protocol": "2", "profile": "fp32", "name": "numpy-window-f64", "families": "window"}
    # Without declarations serve stays protocol 1 whatever attnvet offers.
    out = io.BytesIO()
    attnvet.worker.serve(lambda case: None, profile="bf16", stdin=io.BytesIO(frame(
        {"request": "hello", "protocol": "1", "protocol_max": "2"})), stdout=out)
    out.seek(0)
    assert read_frame(out) == ({"profile": "bf16"}, {})


def test_declaration_v2():
    from attnvet.worker import declaration_v2
    assert declaration_v2() == {}
    assert declaration_v2(families=["dense"], quantized=("int8_kv",),
                          declare={"dtype.k": "F16", "max_head_dim": 128, "splits": (1, 2), "sink": False}) == {
        "dtype.k": "F16", "max_head_dim": "128", "splits": "1,2", "sink": "false",
        "families": "dense", "quantized": "int8_kv"}
    for bad in ({"acc_dtype": "fp32"}, {"name": "x"}, {"protocol": "3"}):
        with pytest.raises(ValueError, match="not a protocol 2 declaration"):
            declaration_v2(declare=bad)


def test_case_names_every_tensor():
    c = Case({"family": "dense", "split": "2", "outputs": "o,lse"},
             {"k_scale": np.ones(1, np.float32)}, {"k_scale": "F32"})
    assert c.k_scale.shape == (1,) and c.dtypes == {"k_scale": "F32"}
    assert (c.split, c.outputs, c.q, c.attn_sink) == (2, ["o", "lse"], None, None)
    with pytest.raises(AttributeError):
        c.cu_seqlens_q


def fuzz_dense(*worker_args):
    cmd = attnvet.find_binary() + ["fuzz", "--family", "dense", "--cases", "150", "--seed", "1", "--save", "0",
                                   "--target", "exec:" + " ".join([sys.executable, DENSE, *worker_args])]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_fuzz_quantized_through_serve():
    """serve declares quantized=: the FP8, INT8 and NVFP4 dense cases are
    sent (none skipped) and a correct kernel passes them; the same kernel
    ignoring the INT8 scales fails."""
    r = fuzz_dense()
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"judged\s+(\d+) cases", r.stdout)
    assert m and int(m.group(1)) >= 145, r.stdout
    assert "skipped" not in r.stdout and "0 reported errors" in r.stdout, r.stdout
    r = fuzz_dense("--bad", "int8-scale")
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"failures\s+\d+ failing cases", r.stdout), r.stdout
