#!/usr/bin/env python3
"""The float64 reference of ref/ref.go in NumPy, timed on the shapes of
ref's Go benchmarks (BenchmarkRefSmall, BenchmarkRefDecode), to compare the
Go reference with the obvious alternative.

For each query row (token t, head h) with keys k_i = v_i (sparse family:
one shared KV row), sink s_h:

    x_i = scale * (q . k_i),   a_i = scale * (|q| . |k_i|)
    M = max_i x_i,  B = max(M, s),  w_i = exp(x_i - B),  w_s = exp(s - B)
    p_i = w_i / (sum_i w_i + w_s)
    o_j = sum_i p_i v_ij,                 AbsV_j = sum_i p_i |v_ij|
    Dev_c,j = sum_i p_i c_i |v_ij - o_j|  for c_i = 1, a_i, |x_i|, M - x_i

"full" computes o and the five magnitudes (what ref.Compute returns);
"o-only" computes o alone (two matrix products per token: BLAS's home
ground). Timing: time.perf_counter around whole cases, the best of several
repeats, reported in ns per case and per query row; alongside, the CPU time
of the process (time.process_time, all BLAS threads), which other load on a
shared machine inflates less. OPENBLAS_NUM_THREADS=1 gives one thread.

    /usr/bin/python3 scripts/bench_numpy.py [--quick]
    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 scripts/bench_numpy.py

Inputs are random BF16-representable values; the key sets are gathered
before timing (the Go benchmark also gathers inside Compute, a negligible
cost).
"""
import argparse
import os
import sys
import time

import numpy as np


def bf16(x):
    """Round float64 -> float32 -> bfloat16 (truncation of the low 16 bits
    after rounding to nearest even), returned as float64."""
    f = np.asarray(x, dtype=np.float32)
    b = f.view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16 << 16
    return b.astype(np.uint32).view(np.float32).astype(np.float64)


def make(T, H, D, n, seed=1):
    rng = np.random.default_rng(seed)
    q = bf16(rng.standard_normal((T, H, D)))
    kv = bf16(rng.standard_normal((T, n, D)))  # token t's gathered key/value rows
    sink = rng.standard_normal(H).astype(np.float32).astype(np.float64)
    return q, kv, sink, 1.0 / np.sqrt(D)


def full(q, kv, sink, scale, hchunk=8):
    T, H, D = q.shape
    n = kv.shape[1]
    O = np.empty((T, H, D))
    AbsV = np.empty((T, H, D))
    Dev = np.empty((T, H, 4, D))  # Dev1, DevA, DevX, DevM
    buf = np.empty((hchunk, n, D))
    for t in range(T):
        K = kv[t]
        aK = np.abs(K)
        x = (q[t] @ K.T) * scale  # [H, n]
        a = (np.abs(q[t]) @ aK.T) * scale
        m = x.max(axis=1)
        big = np.maximum(m, sink)
        w = np.exp(x - big[:, None])
        ws = np.exp(sink - big)
        p = w / (w.sum(axis=1) + ws)[:, None]
        o = p @ K
        O[t] = o
        AbsV[t] = p @ aK
        wts = np.stack([p, p * a, p * np.abs(x), p * (m[:, None] - x)], axis=1)  # [H, 4, n]
        for h0 in range(0, H, hchunk):
            hs = slice(h0, min(h0 + hchunk, H))
            b = buf[: hs.stop - hs.start]
            np.subtract(K[None, :, :], o[hs, None, :], out=b)
            np.abs(b, out=b)
            np.matmul(wts[hs], b, out=Dev[t, hs])
    return O, AbsV, Dev


def oonly(q, kv, sink, scale):
    T, H, D = q.shape
    O = np.empty((T, H, D))
    for t in range(T):
        K = kv[t]
        x = (q[t] @ K.T) * scale
        big = np.maximum(x.max(axis=1), sink)
        w = np.exp(x - big[:, None])
        O[t] = (w @ K) / (w.sum(axis=1) + np.exp(sink - big))[:, None]
    return O


def check(q, kv, sink, scale):
    """The vectorised code against a plain per-row loop on a few rows."""
    O, AbsV, Dev = full(q, kv, sink, scale)
    O2 = oonly(q, kv, sink, scale)
    for t, h in [(0, 0), (q.shape[0] - 1, q.shape[1] - 1)]:
        K = kv[t]
        x = scale * (K @ q[t, h])
        a = scale * (np.abs(K) @ np.abs(q[t, h]))
        m = x.max()
        big = max(m, sink[h])
        w = np.exp(x - big)
        p = w / (w.sum() + np.exp(sink[h] - big))
        o = p @ K
        d = np.abs(K - o)
        want = [o, p @ np.abs(K), p @ d, (p * a) @ d, (p * np.abs(x)) @ d, (p * (m - x)) @ d]
        got = [O[t, h], AbsV[t, h]] + [Dev[t, h, c] for c in range(4)]
        for g, w_ in zip(got, want):
            assert np.allclose(g, w_, rtol=1e-12, atol=1e-300), (t, h)
        assert np.allclose(O2[t, h], o, rtol=1e-12, atol=1e-300)


def bench(f, args, repeats, inner):
    """Best wall time (time.perf_counter) and best CPU time of the process,
    all threads (time.process_time), per call, in ns."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(inner):
            f(*args)
        wall = min(wall, (time.perf_counter() - t0) / inner)
        cpu = min(cpu, (time.process_time() - c0) / inner)
    return wall * 1e9, cpu * 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    opt = ap.parse_args()
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    np.ones((64, 64)) @ np.ones((64, 64))  # load BLAS
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({l.split()[-1] for l in f if "blas" in l.lower() and ".so" in l})
        print("BLAS libraries mapped:", ", ".join(os.path.realpath(l) for l in libs) or "none")
    except OSError:
        pass
    shapes = [
        # name, T, H, D, n, (repeats, inner)
        ("small  (T=1, H=4, D=32, n=32)", 1, 4, 32, 32, (5, 2000) if not opt.quick else (3, 200)),
        ("decode (T=64, H=64, D=512, n=640)", 64, 64, 512, 640, (3, 1) if not opt.quick else (1, 1)),
    ]
    for name, T, H, D, n, (rep, inner) in shapes:
        q, kv, sink, scale = make(T, H, D, n)
        check(q, kv, sink, scale)
        for variant, f in [("full  ", full), ("o-only", oonly)]:
            ns, cpu = bench(f, (q, kv, sink, scale), rep, inner)
            print(f"{name}  {variant}: {ns:14.0f} ns/case  {cpu:14.0f} cpu-ns/case  {ns / (T * H):10.0f} ns/row")


if __name__ == "__main__":
    main()
