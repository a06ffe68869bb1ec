#!/usr/bin/env python3
"""The peer of `attnvet fuzz`: the torch harness a kernel team would write
without attnvet, for docs/benchmarks-fuzz.md.

Per case (cycling over the shapes of attnvet's fuzz mix, written by
`go test ./internal/campaign -run WriteFuzzShapes -shapes FILE`): random
BF16 inputs of the case's shape (window family: causal, sliding window of
the case's key counts; sparse family: each (token, KV head) row gathers its
own random key set from a shared pool, K = V as in MLA), a float64 torch
reference, a BF16 emulation through torch ops (BF16 inputs, FP32 scores and
softmax with the sink, P rounded to BF16 for P·V, FP32 accumulation, output
cast to BF16), and torch.testing.assert_close(out, ref) with torch's BF16
defaults (rtol 1.6e-2, atol 1e-5). Every row of a case goes through one
batched set of tensor operations (keys padded to the longest row and
masked). One thread (torch.set_num_threads(1)).

    python3 scripts/fuzz_torch.py SHAPES.json [--seconds 20] [--json OUT]

Prints cases, CPU seconds (time.process_time) and cases per CPU second.
"""

import argparse
import json
import sys
import time

import torch

torch.set_num_threads(1)


def draw(g, shape):
    return torch.randn(shape, generator=g).to(torch.bfloat16)


def attention(q, k, v, valid, sink, scale, dtype, round_p):
    """q (T, G, P, D), k (T, G, N, D), v (T, G, N, Dv), valid (T, G, N),
    sink (G, P) (−inf = none). Returns o (T, G, P, Dv) in dtype."""
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    s = torch.einsum("tgpd,tgnd->tgpn", q, k) * scale
    s = s.masked_fill(~valid[:, :, None, :], float("-inf"))
    T, G, P, _ = s.shape
    sk = sink.to(dtype)[None, :, :, None].expand(T, G, P, 1)
    p = torch.softmax(torch.cat([s, sk], dim=-1), dim=-1)[..., :-1]
    p = torch.nan_to_num(p, nan=0.0)  # no key and no sink: o = 0
    if round_p:
        p = p.to(torch.bfloat16).to(dtype)
    return torch.einsum("tgpn,tgnd->tgpd", p, v)


def run_case(g, c):
    T, H, Hkv, D, Dv = c["t"], c["h"], c["hkv"], c["d"], c["dv"]
    P = H // Hkv
    n = torch.tensor(c["n"], dtype=torch.long).reshape(T, Hkv)
    N = max(int(n.max()) if n.numel() else 0, 1)
    q = draw(g, (T, Hkv, P, D))
    sink = draw(g, (Hkv, P)) if c["sink"] else torch.full((Hkv, P), float("-inf"), dtype=torch.bfloat16)
    ar = torch.arange(N)
    valid = ar[None, None, :] < n[:, :, None]
    if c["family"] == "window":
        kv_k, kv_v = draw(g, (T, Hkv, D)), draw(g, (T, Hkv, Dv))
        t = torch.arange(T)[:, None, None]
        pos = (t - n[:, :, None] + 1 + ar[None, None, :]).clamp(0, T - 1)  # token index of key i
        gi = torch.arange(Hkv)[None, :, None]
        k, v = kv_k[pos, gi], kv_v[pos, gi]
    else:
        pool = draw(g, (2 * N, D))
        idx = torch.argsort(torch.rand((T, Hkv, 2 * N), generator=g), dim=-1)[..., :N]
        k = pool[idx]
        v = k[..., :Dv]
    ref = attention(q, k, v, valid, sink, c["scale"], torch.float64, False)
    out = attention(q, k, v, valid, sink, c["scale"], torch.float32, True).to(torch.bfloat16)
    try:
        torch.testing.assert_close(out.to(torch.float64), ref, rtol=1.6e-2, atol=1e-5, equal_nan=True)
        return 0
    except AssertionError:
        return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("shapes")
    ap.add_argument("--seconds", type=float, default=20, help="CPU seconds to run (whole cases)")
    ap.add_argument("--json", help="write {cases, cpu_s, wall_s, failed} to this file")
    args = ap.parse_args()
    with open(args.shapes) as f:
        shapes = json.load(f)
    g = torch.Generator().manual_seed(1)
    run_case(g, shapes[0])  # warm up torch's kernels before timing
    cases = failed = 0
    c0, w0 = time.process_time(), time.perf_counter()
    while time.process_time() - c0 < args.seconds:
        failed += run_case(g, shapes[cases % len(shapes)])
        cases += 1
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    res = {"cases": cases, "cpu_s": cpu, "wall_s": wall, "failed": failed}
    print(f"torch {torch.__version__}, 1 thread: {cases} cases, {failed} fail assert_close, "
          f"{cpu:.2f} CPU-s, {wall:.2f} s wall: {cases / cpu:.0f} cases per CPU second")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f)


if __name__ == "__main__":
    sys.exit(main())
