#!/usr/bin/env python3
"""The fuzz hot loop in Python with NumPy, for docs/benchmarks-fuzz.md.

Per case, the numerical work of attnvet's campaign loop
(BenchmarkFuzzLoop in internal/campaign): draw BF16 inputs of the case's
shape, compute the float64 reference with the magnitudes a per-element
bound needs (Σp|v|, Σp·c·|v−o| for c = 1, a_i, |x_i|, m−x_i), run one BF16
emulation of kernel B "tiled" (Bc = 32, profile bf16: FP32 scores and
accumulators, P rounded to BF16 for P·V, masked lanes biased by −1e20,
online merge across tiles, the sink, the output cast to BF16 with ties
away), and compare element-wise against a bound built from those
magnitudes. (The Go loop does more per case: the edge-biased generator with
index rows and block tables, the contract check, the edge classes, the full
bound. None of that is counted here.)

Two emulations:

  exact (default)  computes what attnvet's Go emulation computes, bit for
                   bit: dot products accumulated left to right in FP32, lane
                   sums in lane order, exp as fdlibm's algorithm in float64
                   rounded to FP32 (num.Exp32). Vectorised over heads,
                   keys, tiles and lanes; only the sequential sums (over d,
                   over a tile's lanes, over tiles) loop in Python, as they
                   must to keep the order. --verify checks the bits against
                   outputs the Go emulation wrote.
  blas             the same formula with NumPy matmuls (BLAS order, numpy's
                   exp): faster, but not the same bits: it cannot replay a
                   failure the Go emulation found, so it is not an emulation
                   in attnvet's sense. Reported for scale.

Usage:
    go test ./internal/campaign -run WriteFuzzShapes -shapes /tmp/shapes.json -verify /tmp/verify.json
    python3 scripts/fuzz_numpy.py /tmp/shapes.json [--mode exact|blas] [--seconds 20]
    python3 scripts/fuzz_numpy.py --verify /tmp/verify.json
"""

import argparse
import json
import sys
import time

import numpy as np

BC = 32
MASK = np.float32(-1e20)
U_ACC = 2.0 ** -24
U_BF16 = 2.0 ** -8
F32 = np.float32


def bf16_rne(x):
    """Round float32 values to BF16 (ties to even), kept as float32. NaN stays NaN."""
    x = np.ascontiguousarray(x, dtype=F32)
    b = x.view(np.uint32)
    r = ((b >> 16) & 1) + np.uint32(0x7FFF)
    out = ((b + r) & np.uint32(0xFFFF0000)).view(F32)
    return np.where(np.isnan(x), x, out)


def bf16_away(x):
    """Round float32 values to BF16 (ties away from zero): the device cast."""
    x = np.ascontiguousarray(x, dtype=F32)
    b = x.view(np.uint32)
    out = ((b + np.uint32(0x8000)) & np.uint32(0xFFFF0000)).view(F32)
    return np.where(np.isnan(x), x, out)


def exp64(x):
    """num.Exp: fdlibm's exp in float64 (the same operations, vectorised)."""
    x = np.asarray(x, dtype=np.float64)
    ln2hi, ln2lo, log2e = 6.93147180369123816490e-01, 1.90821492927058770002e-10, 1.44269504088896338700e+00
    p1, p2, p3 = 1.66666666666666657415e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05
    p4, p5 = -1.65339022054652515390e-06, 4.13813679705723846039e-08
    with np.errstate(over="ignore", invalid="ignore"):
        xs = np.where(np.isfinite(x), x, 0.0)
        k = np.where(xs < 0, np.trunc(log2e * xs - 0.5), np.trunc(log2e * xs + 0.5))
        hi = xs - k * ln2hi
        lo = k * ln2lo
        r = hi - lo
        t = r * r
        c = r - t * (p1 + t * (p2 + t * (p3 + t * (p4 + t * p5))))
        y = 1 - ((lo - (r * c) / (2 - c)) - hi)
        out = np.ldexp(y, k.astype(np.int64))
        out = np.where(np.abs(xs) < 2.0 ** -28, 1 + xs, out)
        out = np.where(x > 7.09782712893383973096e+02, np.inf, out)
        out = np.where(x < -7.45133219101941108420e+02, 0.0, out)
        out = np.where(np.isnan(x) | (x == np.inf), x, out)
        out = np.where(x == -np.inf, 0.0, out)
    return out


def exp32(x):
    """num.Exp32: float32(Exp(float64(x)))."""
    with np.errstate(over="ignore"):
        return exp64(np.asarray(x, dtype=F32).astype(np.float64)).astype(F32)


def draw(rng, shape):
    return bf16_rne(rng.standard_normal(shape).astype(F32))


def reference(q, k, v, scale, sink):
    """float64 attention for the query heads q [per, D] over keys k [n, D];
    sink: one per head (−inf = none)."""
    q64, k64, v64 = q.astype(np.float64), k.astype(np.float64), v.astype(np.float64)
    x = scale * (q64 @ k64.T)
    a = scale * (np.abs(q64) @ np.abs(k64).T)
    mx = x.max(axis=1)
    big = np.maximum(mx, sink)
    w = np.exp(x - big[:, None])
    ws = np.exp(sink - big)
    p = w / (w.sum(axis=1) + ws)[:, None]
    o = p @ v64
    absv = p @ np.abs(v64)
    dev = np.abs(v64[None, :, :] - o[:, None, :])  # [per, n, Dv]
    dev1 = np.einsum("pn,pnd->pd", p, dev)
    deva = np.einsum("pn,pnd->pd", p * a, dev)
    devx = np.einsum("pn,pnd->pd", p * np.abs(x), dev)
    devm = np.einsum("pn,pnd->pd", p * (mx[:, None] - x), dev)
    return o, absv, dev1, deva, devx, devm


# --- exact: the Go emulation's operations in its order ---------------------

def tiled_exact(q, k, v, scale, sink):
    """Kernel B, Bc = 32, profile bf16, as impl emulates it. Every sum runs
    in the emulation's order; everything else is vectorised over heads,
    keys, tiles and lanes."""
    per, n, dv = q.shape[0], k.shape[0], v.shape[1]
    nt = -(-n // BC)
    sc = F32(scale)
    acc = np.zeros((per, n), dtype=F32)
    for d in range(q.shape[1]):  # q·k: FP32 products summed over d in order
        acc = acc + np.multiply.outer(q[:, d], k[:, d])
    s = np.full((per, nt * BC), MASK, dtype=F32)  # masked lanes: the −1e20 bias
    s[:, :n] = acc * sc
    s = s.reshape(per, nt, BC)
    mt = s.max(axis=2)  # [per, nt]
    pc = exp32(s - mt[:, :, None])
    lt = np.zeros((per, nt), dtype=F32)
    for c in range(BC):  # l_t: the unrounded p of every lane, in lane order
        lt = lt + pc[:, :, c]
    p = bf16_rne(pc)
    vp = np.zeros((nt * BC, dv), dtype=F32)
    vp[:n] = v
    vp = vp.reshape(nt, BC, dv)
    valid = (np.arange(nt * BC) < n).reshape(nt, BC)
    ot = np.zeros((per, nt, dv), dtype=F32)
    for c in range(BC):  # o_t: BF16 p times v over the tile's keys, in lane order
        add = ot + p[:, :, c, None] * vp[None, :, c, :]
        ot = add if valid[:, c].all() else np.where(valid[None, :, c, None], add, ot)
    m, l, o = mt[:, 0], lt[:, 0], ot[:, 0]
    for j in range(1, nt):  # the online merge, tile by tile
        mn = np.maximum(m, mt[:, j])
        alpha, beta = exp32(m - mn), exp32(mt[:, j] - mn)
        l = alpha * l + beta * lt[:, j]
        o = alpha[:, None] * o + beta[:, None] * ot[:, j]
        m = mn
    denom = l + exp32(sink.astype(F32) - m)
    return bf16_away(o / denom[:, None])


# --- batched: the exact emulation over every row of a case at once ---------

def tiled_exact_rows(q, k, v, n, scale, sink):
    """tiled_exact for R rows at once: q [R, per, D], k [R, N, D], v [R, N, Dv]
    padded to N keys, n [R] keys per row (≥ 1), sink [R, per]. Rows with
    fewer tiles skip the missing ones, as the kernel does."""
    R, per, _ = q.shape
    N, dv = k.shape[1], v.shape[2]
    nt = -(-N // BC)
    sc = F32(scale)
    acc = np.zeros((R, per, N), dtype=F32)
    for d in range(q.shape[2]):
        acc = acc + q[:, :, d, None] * k[:, None, :, d]
    lane = np.arange(nt * BC)
    valid = lane[None, :] < n[:, None]  # [R, nt·BC]
    s = np.full((R, per, nt * BC), MASK, dtype=F32)
    s[:, :, :N] = acc * sc
    s = np.where(valid[:, None, :], s, MASK).reshape(R, per, nt, BC)
    mt = s.max(axis=3)
    pc = exp32(s - mt[..., None])
    lt = np.zeros((R, per, nt), dtype=F32)
    for c in range(BC):
        lt = lt + pc[..., c]
    p = bf16_rne(pc)
    vp = np.zeros((R, nt * BC, dv), dtype=F32)
    vp[:, :N] = v
    vp = vp.reshape(R, nt, BC, dv)
    valid = valid.reshape(R, nt, BC)
    ot = np.zeros((R, per, nt, dv), dtype=F32)
    for c in range(BC):
        ot = np.where(valid[:, None, :, c, None], ot + p[..., c, None] * vp[:, None, :, c, :], ot)
    ntiles = -(-n // BC)
    m, l, o = mt[..., 0], lt[..., 0], ot[:, :, 0]
    for j in range(1, nt):
        mn = np.maximum(m, mt[..., j])
        alpha, beta = exp32(m - mn), exp32(mt[..., j] - mn)
        use = (j < ntiles)[:, None]
        l = np.where(use, alpha * l + beta * lt[..., j], l)
        o = np.where(use[..., None], alpha[..., None] * o + beta[..., None] * ot[:, :, j], o)
        m = np.where(use, mn, m)
    denom = l + exp32(sink.astype(F32) - m)
    return bf16_away(o / denom[..., None])


def reference_rows(q, k, v, n, scale, sink):
    """reference for R padded rows at once."""
    q64, k64, v64 = q.astype(np.float64), k.astype(np.float64), v.astype(np.float64)
    valid = np.arange(k.shape[1])[None, :] < n[:, None]
    x = scale * np.einsum("rpd,rnd->rpn", q64, k64)
    a = scale * np.einsum("rpd,rnd->rpn", np.abs(q64), np.abs(k64))
    x = np.where(valid[:, None, :], x, -np.inf)
    mx = x.max(axis=2)
    big = np.maximum(mx, sink)
    w = np.exp(x - big[..., None])
    ws = np.exp(sink - big)
    p = w / (w.sum(axis=2) + ws)[..., None]
    o = np.einsum("rpn,rnd->rpd", p, v64)
    absv = np.einsum("rpn,rnd->rpd", p, np.abs(v64))
    xs = np.where(valid[:, None, :], x, 0)
    dev = np.abs(v64[:, None, :, :] - o[:, :, None, :])  # [R, per, N, Dv]
    dev1 = np.einsum("rpn,rpnd->rpd", p, dev)
    deva = np.einsum("rpn,rpnd->rpd", p * a, dev)
    devx = np.einsum("rpn,rpnd->rpd", p * np.abs(xs), dev)
    devm = np.einsum("rpn,rpnd->rpd", p * np.where(valid[:, None, :], mx[..., None] - xs, 0), dev)
    return o, absv, dev1, deva, devx, devm


def run_case_batched(rng, c):
    """run_case with every row of the case computed at once (in chunks that
    keep the [rows, heads, keys, Dv] temporaries under ~8M values)."""
    T, H, Hkv, D, Dv = c["t"], c["h"], c["hkv"], c["d"], c["dv"]
    per = H // Hkv
    q = draw(rng, (T, H, D))
    sinks = bf16_rne(rng.standard_normal(H).astype(F32)).astype(np.float64) if c["sink"] else np.full(H, -np.inf)
    if c["family"] == "window":
        kk, vv = draw(rng, (T, Hkv, D)), draw(rng, (T, Hkv, Dv))
    else:
        nmax = max(c["n"]) if c["n"] else 0
        pool = draw(rng, (max(nmax, 1) * 2, D))
    rows = [(t, g, c["n"][t * Hkv + g]) for t in range(T) for g in range(Hkv) if c["n"][t * Hkv + g] > 0]
    if not rows:
        return 0, 0
    N = max(r[2] for r in rows)
    chunk = max(1, 8_000_000 // (per * N * Dv))
    fails = checked = 0
    for i0 in range(0, len(rows), chunk):
        rs = rows[i0:i0 + chunk]
        R = len(rs)
        n = np.array([r[2] for r in rs])
        kb = np.zeros((R, N, D), dtype=F32)
        vb = np.zeros((R, N, Dv), dtype=F32)
        for i, (t, g, nr) in enumerate(rs):  # the gather
            if c["family"] == "window":
                kb[i, :nr], vb[i, :nr] = kk[t - nr + 1:t + 1, g], vv[t - nr + 1:t + 1, g]
            else:
                idx = rng.permutation(pool.shape[0])[:nr]
                kb[i, :nr] = vb[i, :nr] = pool[idx]
        tt = np.array([r[0] for r in rs])
        gg = np.array([r[1] for r in rs])
        heads = gg[:, None] * per + np.arange(per)[None, :]
        qb = q[tt[:, None], heads]  # [R, per, D]
        sink = sinks[heads]
        o, absv, dev1, deva, devx, devm = reference_rows(qb, kb, vb, n, c["scale"], sink)
        out = tiled_exact_rows(qb, kb, vb, n, c["scale"], sink)
        g_acc = ((n + 2) * U_ACC)[:, None, None]
        allowed = (2 * g_acc * (dev1 + deva + devx) + U_ACC * devm
                   + (g_acc + U_BF16) * absv + U_BF16 * np.abs(o)) * 1.01 + 1e-30
        err = np.abs(out.astype(np.float64) - o)
        fails += int((err > allowed).sum())
        checked += o.size
    return fails, checked


# --- blas: the same formula the NumPy way (not the same bits) --------------

def tiled_blas(q, k, v, scale, sink):
    per, n = q.shape[0], k.shape[0]
    sc = F32(scale)
    m = l = o = None
    for t0 in range(0, n, BC):
        kt, vt = k[t0:t0 + BC], v[t0:t0 + BC]
        s = np.full((per, BC), MASK, dtype=F32)
        s[:, :kt.shape[0]] = (q @ kt.T) * sc
        mt = s.max(axis=1)
        p = np.exp(s - mt[:, None])
        lt = p.sum(axis=1, dtype=F32)
        ot = bf16_rne(p[:, :kt.shape[0]]) @ vt
        if m is None:
            m, l, o = mt, lt, ot
            continue
        mn = np.maximum(m, mt)
        alpha, beta = np.exp(m - mn), np.exp(mt - mn)
        l = alpha * l + beta * lt
        o = alpha[:, None] * o + beta[:, None] * ot
        m = mn
    denom = l + np.exp(sink.astype(F32) - m)
    return bf16_away(o / denom[:, None])


def window_rows(T, W):
    for t in range(T):
        lo = max(0, t - W + 1) if W > 0 else 0
        yield t, lo


def run_case(rng, c, kernel):
    T, H, Hkv, D, Dv = c["t"], c["h"], c["hkv"], c["d"], c["dv"]
    per = H // Hkv
    scale = c["scale"]
    q = draw(rng, (T, H, D))
    sinks = bf16_rne(rng.standard_normal(H).astype(F32)).astype(np.float64) if c["sink"] else np.full(H, -np.inf)
    if c["family"] == "window":
        k, v = draw(rng, (T, Hkv, D)), draw(rng, (T, Hkv, Dv))
    else:
        nmax = max(c["n"]) if c["n"] else 0
        pool = draw(rng, (max(nmax, 1) * 2, D))
    fails = checked = 0
    for t in range(T):
        for g in range(Hkv):
            n = c["n"][t * Hkv + g]
            if n == 0:
                continue  # o = 0 exactly, as in the Go loop
            if c["family"] == "window":
                kk, vv = k[t - n + 1:t + 1, g], v[t - n + 1:t + 1, g]
            else:
                idx = rng.permutation(pool.shape[0])[:n]  # the index-row gather
                kk = vv = pool[idx]
            qg = q[t, g * per:(g + 1) * per]  # the query heads sharing KV head g
            sink = sinks[g * per:(g + 1) * per]
            o, absv, dev1, deva, devx, devm = reference(qg, kk, vv, scale, sink)
            out = kernel(qg, kk, vv, scale, sink)
            g_acc = (n + 2) * U_ACC
            allowed = (2 * g_acc * (dev1 + deva + devx) + U_ACC * devm
                       + (g_acc + U_BF16) * absv + U_BF16 * np.abs(o)) * 1.01 + 1e-30
            err = np.abs(out.astype(np.float64) - o)
            fails += int((err > allowed).sum())
            checked += o.size
    return fails, checked


def verify(path):
    """Check that the exact emulation reproduces the Go emulation's bits."""
    with open(path) as f:
        vcs = json.load(f, parse_int=float)  # "-0" is the float −0, not the int 0
    bad = total = bad_b = 0
    for c in vcs:
        T, H, Hkv, D, Dv, W = (int(c[x]) for x in ("T", "H", "Hkv", "D", "Dv", "W"))
        per = H // Hkv
        q = np.array(c["Q"], dtype=F32).reshape(T, H, D)
        k = np.array(c["K"], dtype=F32).reshape(T, Hkv, D)
        v = np.array(c["V"], dtype=F32).reshape(T, Hkv, Dv)
        want = np.array(c["Out"], dtype=F32).reshape(T, H, Dv)
        sinks = np.array(c["Sink"], dtype=np.float64) if c["Sink"] else np.full(H, -np.inf)
        for t, lo in window_rows(T, W):
            for g in range(Hkv):
                got = tiled_exact(q[t, g * per:(g + 1) * per], k[lo:t + 1, g], v[lo:t + 1, g], c["Scale"],
                                  sinks[g * per:(g + 1) * per])
                w = want[t, g * per:(g + 1) * per]
                bad += int((got.view(np.uint32) != w.view(np.uint32)).sum())
                total += got.size
        # The batched form, every row of the case at once.
        rows = [(t, g, lo) for t, lo in window_rows(T, W) for g in range(Hkv)]
        N = max(t - lo + 1 for t, _, lo in rows)
        R = len(rows)
        n = np.array([t - lo + 1 for t, _, lo in rows])
        kb = np.zeros((R, N, D), dtype=F32)
        vb = np.zeros((R, N, Dv), dtype=F32)
        for i, (t, g, lo) in enumerate(rows):
            kb[i, :t - lo + 1], vb[i, :t - lo + 1] = k[lo:t + 1, g], v[lo:t + 1, g]
        tt = np.array([r[0] for r in rows])
        heads = np.array([r[1] for r in rows])[:, None] * per + np.arange(per)[None, :]
        got = tiled_exact_rows(q[tt[:, None], heads], kb, vb, n, c["Scale"], sinks[heads])
        w = want[tt[:, None], heads]
        bad_b += int((got.view(np.uint32) != w.view(np.uint32)).sum())
    print(f"verify: {len(vcs)} cases, {total} output elements, {bad} differ in bits from the Go emulation "
          f"(per row), {bad_b} (batched)")
    bad += bad_b
    return 0 if bad == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shapes", nargs="?", help="JSON from TestWriteFuzzShapes -shapes")
    ap.add_argument("--mode", choices=["exact", "batched", "blas"], default="exact")
    ap.add_argument("--seconds", type=float, default=20, help="run whole passes over the cases until at least this long")
    ap.add_argument("--verify", metavar="FILE", help="JSON from TestWriteFuzzShapes -verify: check the exact emulation's bits")
    args = ap.parse_args()
    if args.verify:
        return verify(args.verify)
    if not args.shapes:
        ap.error("give the shapes file (or --verify FILE)")
    with open(args.shapes) as f:
        shapes = json.load(f)
    kernel = tiled_exact if args.mode == "exact" else tiled_blas
    step = run_case_batched if args.mode == "batched" else (lambda rng, c: run_case(rng, c, kernel))
    rng = np.random.default_rng(1)
    done = fails = checked = 0
    start, cpu0 = time.perf_counter(), time.process_time()  # user + system CPU of this process
    while True:
        for c in shapes:
            f, n = step(rng, c)
            fails += f
            checked += n
            done += 1
        el = time.perf_counter() - start
        if el >= args.seconds:
            break
    cpu = time.process_time() - cpu0
    print(f"numpy {np.__version__} ({args.mode}): {done} cases in {el:.2f}s = {done / el:.1f} cases/s wall, "
          f"{done / cpu:.1f} cases/s per CPU second ({checked} elements, {fails} beyond the bound)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
