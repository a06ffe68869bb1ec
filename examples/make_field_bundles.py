#!/usr/bin/env python3
"""Make dense, mla and combine bundles with torch, following the source
projects' conventions as ../shared's SPEC pages and docs/interop.md state
them, independently of attnvet's Go code: the key sets (FlashAttention's
bottom-right causal window, paged caches, FlashMLA's flat slot indices,
flashinfer's merge_states), the exact math and a BF16 kernel's precision
path are written here from those descriptions. Files are written by the
Python package's writer (python/attnvet, pure Python).

    /usr/bin/python3 examples/make_field_bundles.py OUTDIR

writes, with the exit code `attnvet check` must give each (manifest.json):

    dense_batch_causal_ok     0  [B, S, H, D], Sq < Sk bottom-right causal, GQA, softcap, lse e
    dense_varlen_window_ok    0  cu_seqlens, window_left/right, ALiBi (abs), sink, lse base 2
    dense_paged_ok            0  k_cache/v_cache + block_table + cache_seqlens, odd page size
    dense_topleft_causal      1  causal aligned top-left (a real bug class): out and lse wrong
    dense_lse_off             1  correct out, softmax_lse off by 1e-3
    mla_ok                    0  q [b, s_q, H, 576], BF16 cache, -1 entries, sink, NaN unread rows
    mla_lse_base2             1  the lse written in base 2 where natural is declared
    mla_sink_in_lse           1  the lse with the sink included where FlashMLA excludes it
    combine_ok                0  merge_states: v [n, K, H, D], s base 2 with empty (-inf) states
    combine_dropstate         1  one non-empty partial state ignored
"""

import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import attnvet  # noqa: E402

BF16 = torch.bfloat16


def bf16(shape, g, scale=1.0):
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(BF16)


def kernel_row(q, k, v, scale, bias=None, softcap=0.0, sink=None):
    """One query row the way a BF16 flash kernel computes it: FP32 scores
    (softcap, then the bias), FP32 softmax statistics, P rounded to BF16 for
    P·V with FP32 accumulation, l from the unrounded p, BF16 output (RNE).
    Returns (out [Dv] bf16, the keys' lse and the lse with the sink, both
    natural; None for an empty row)."""
    n = k.shape[0]
    if n == 0:
        return torch.zeros(v.shape[1], dtype=BF16), None, None
    s = (k.float() @ q.float()) * torch.tensor(scale, dtype=torch.float32)
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    if bias is not None:
        s = s + bias.float()
    m = s.max()
    if sink is not None:
        m = torch.maximum(m, torch.tensor(sink, dtype=torch.float32))
    p = torch.exp(s - m)
    l_keys = p.sum()
    l = l_keys + (torch.exp(torch.tensor(sink, dtype=torch.float32) - m) if sink is not None else 0)
    o = (p.to(BF16).float() @ v.float()) / l
    lse_keys = (torch.log(l_keys) + m).item()
    return o.to(BF16), lse_keys, (torch.log(l) + m).item()


def exact_row(q, k, v, scale, bias=None, softcap=0.0, sink=None):
    """The float64 answer (for the checks in this script only)."""
    if k.shape[0] == 0:
        return torch.zeros(v.shape[1], dtype=torch.float64)
    s = (k.double() @ q.double()) * scale
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    if bias is not None:
        s = s + bias.double()
    w = torch.cat([s, torch.tensor([sink], dtype=torch.float64)]) if sink is not None else s
    p = torch.softmax(w, 0)[: k.shape[0]]
    return p @ v.double()


def dense_keys(i, sq, sk, causal, wl, wr):
    """FlashAttention's key range of query i (0-based) of a sequence with sq
    queries and sk keys: bottom-right aligned, delta = sk - sq; causal sets
    the right window to 0; -1 = unbounded. Returns (lo, hi) inclusive."""
    d = sk - sq
    if causal:
        wr = 0
    lo = 0 if wl < 0 else max(0, i + d - wl)
    hi = sk - 1 if wr < 0 else min(sk - 1, i + d + wr)
    return lo, hi


def dense_bundle(g, name, layout, B, sqs, sks, H, Hkv, D, Dv, causal=False, wl=-1, wr=-1,
                 softcap=0.0, alibi=False, sink=False, lse_base="e", page=0, topleft=False, lse_shift=0.0):
    scale = D ** -0.5
    G = H // Hkv
    slopes = torch.tensor([2.0 ** (-(h + 1) / 2) for h in range(H)], dtype=torch.float32) if alibi else None
    sinks = (torch.randn(H, generator=g, dtype=torch.float64).float()) if sink else None
    qs = [bf16((sq, H, D), g) for sq in sqs]
    ks = [bf16((sk, Hkv, D), g) for sk in sks]
    vs = [bf16((sk, Hkv, Dv), g) for sk in sks]
    outs, lses = [], []
    worst = 0.0
    for b in range(B):
        sq, sk = sqs[b], sks[b]
        o = torch.zeros((sq, H, Dv), dtype=BF16)
        lse = torch.zeros((H, sq), dtype=torch.float32)
        for i in range(sq):
            lo, hi = dense_keys(i, sq, sk, causal, wl, wr)
            if topleft:  # the bug: causal aligned to the top-left corner
                lo, hi = 0, min(sk - 1, i)
            for h in range(H):
                kk, vv = ks[b][lo:hi + 1, h // G], vs[b][lo:hi + 1, h // G]
                bias = None
                if alibi:
                    j = torch.arange(lo, hi + 1, dtype=torch.float64)
                    bias = (-slopes[h].double() * (i + sk - sq - j).abs()).float()
                sg = sinks[h].item() if sink else None
                ob, lse_keys, lse_all = kernel_row(qs[b][i, h], kk, vv, scale, bias, softcap, sg)
                o[i, h] = ob
                worst = max(worst, (ob.double() - exact_row(qs[b][i, h], kk, vv, scale, bias, softcap, sg)).abs().max().item())
                if lse_keys is None:
                    val = math.inf  # FlashAttention: +inf for a row with no key
                else:
                    val = lse_all if sink else lse_keys  # FA4 includes the sink
                    if lse_base == "2":
                        val = val / math.log(2)
                lse[h, i] = val + lse_shift
        outs.append(o)
        lses.append(lse)
    meta = {"family": "dense", "softmax_scale": repr(scale), "causal": str(causal).lower(),
            "window_left": str(wl), "window_right": str(wr), "profile": "bf16rne",
            "lse_base": lse_base, "lse_empty": "+inf"}
    if softcap:
        meta["softcap"] = repr(softcap)
    if alibi:
        meta["alibi_form"] = "abs"
    if sink:
        meta["lse_sink"] = "included"
    t = {}
    if layout == "batch":
        t["q"], t["k"], t["v"], t["out"] = (torch.stack(x) for x in (qs, ks, vs, outs))
        t["softmax_lse"] = torch.stack(lses)
    elif layout == "varlen":
        t["q"], t["k"], t["v"], t["out"] = (torch.cat(x) for x in (qs, ks, vs, outs))
        t["cu_seqlens_q"] = torch.tensor([0] + list(torch.tensor(sqs).cumsum(0)), dtype=torch.int32)
        t["cu_seqlens_k"] = torch.tensor([0] + list(torch.tensor(sks).cumsum(0)), dtype=torch.int32)
        t["softmax_lse"] = torch.cat(lses, 1)
    else:  # paged: pages of `page` tokens in a shuffled pool, NaN in unreferenced slots
        npg = [-(-sk // page) for sk in sks]
        mp = max(npg)
        pool = sum(npg) + 2
        perm = torch.randperm(pool, generator=g)
        kc = torch.full((pool, page, Hkv, D), float("nan"), dtype=BF16)
        vc = torch.full((pool, page, Hkv, Dv), float("nan"), dtype=BF16)
        bt = torch.zeros((B, mp), dtype=torch.int32)
        nxt = 0
        for b in range(B):
            for pg in range(npg[b]):
                phys = int(perm[nxt])
                nxt += 1
                bt[b, pg] = phys
                lo, hi = pg * page, min(sks[b], (pg + 1) * page)
                kc[phys, : hi - lo] = ks[b][lo:hi]
                vc[phys, : hi - lo] = vs[b][lo:hi]
        assert len(set(sqs)) == 1, "paged here uses one query length"
        t["q"], t["out"] = torch.stack(qs), torch.stack(outs)
        t["k_cache"], t["v_cache"], t["block_table"] = kc, vc, bt
        t["cache_seqlens"] = torch.tensor(sks, dtype=torch.int32)
        t["softmax_lse"] = torch.stack(lses)
    if alibi:
        t["alibi_slopes"] = slopes
    if sink:
        t["learnable_sink"] = sinks
    return t, meta, worst


def mla_bundle(g, b=2, s_q=2, H=4, dqk=576, dv=512, pbs=16, NB=12, topk=40, lse_mode="ok"):
    scale = dqk ** -0.55  # FlashMLA's decode tests use d_qk^-0.55
    q = bf16((b, s_q, H, dqk), g).clamp(-1, 1)
    cache = (torch.randn((NB * pbs, dqk), generator=g, dtype=torch.float64) / 10).to(BF16)
    idx = torch.full((b, s_q, topk), -1, dtype=torch.int32)
    used = set()
    for bi in range(b):
        for s in range(s_q):
            n = [topk, 17, 1, 0][(bi * s_q + s) % 4]  # full, partial, one key, none
            sl = torch.randperm(NB * pbs, generator=g)[:n]
            pos = torch.randperm(topk, generator=g)[:n]
            idx[bi, s, pos] = sl.int()
            used.update(sl.tolist())
    for r in range(NB * pbs):  # rows no index reaches hold NaN (FlashMLA's test does the same)
        if r not in used:
            cache[r] = float("nan")
    sink = torch.tensor([0.5, -1.0, math.inf, -math.inf][:H] + [0.0] * (H - 4), dtype=torch.float32)
    out = torch.zeros((b, s_q, H, dv), dtype=BF16)
    lse = torch.zeros((b, H, s_q), dtype=torch.float32)
    for bi in range(b):
        for s in range(s_q):
            sel = idx[bi, s][idx[bi, s] >= 0].long()
            kk = cache[sel]
            for h in range(H):
                sg = sink[h].item()
                if kk.shape[0] == 0:
                    out[bi, s, h] = 0
                    lse[bi, h, s] = math.inf
                    continue
                if sg == math.inf:  # all the weight on the sink: out 0, lse of the keys
                    ob, lk, la = kernel_row(q[bi, s, h], kk, kk[:, :dv], scale)
                    out[bi, s, h] = 0
                else:
                    ob, lk, la = kernel_row(q[bi, s, h], kk, kk[:, :dv], scale, sink=None if sg == -math.inf else sg)
                    out[bi, s, h] = ob
                val = lk
                if lse_mode == "base2":
                    val = lk / math.log(2)
                elif lse_mode == "sink_included" and sg not in (math.inf, -math.inf):
                    val = la
                lse[bi, h, s] = val
    t = {"q": q, "k_cache": cache.reshape(NB, pbs, 1, dqk), "indices": idx, "attn_sink": sink,
         "out": out, "softmax_lse": lse}
    meta = {"family": "mla", "softmax_scale": repr(scale), "d_v": str(dv), "profile": "bf16rne",
            "lse_base": "e", "lse_empty": "+inf", "lse_sink": "excluded"}
    return t, meta


def combine_bundle(g, n=6, K=3, H=4, D=32, drop=False):
    v = bf16((n, K, H, D), g)
    s = (torch.randn((n, K, H), generator=g, dtype=torch.float64) * 3).float()
    s[0, :, :] = -math.inf  # a row with every state empty
    s[1, 1, :] = -math.inf  # one empty state among valid ones
    s[2, :, 0] = -math.inf
    s[2, 0, 0] = 1.5        # only one valid state
    v[1, 1] = float("nan")  # an empty state's v is not read
    vm = torch.zeros((n, H, D), dtype=BF16)
    sm = torch.zeros((n, H), dtype=torch.float32)
    for i in range(n):
        for h in range(H):
            ss = s[i, :, h].clone()
            if drop and i == 3:
                ss[0] = -math.inf  # the defect: state 0 ignored
            if torch.isinf(ss).all() and (ss < 0).all():
                vm[i, h] = 0
                sm[i, h] = -math.inf
                continue
            mx = ss.max()
            w = torch.exp2(ss - mx)  # FP32, exp2(-inf) = 0
            d = w.sum()
            acc = torch.zeros(D, dtype=torch.float32)
            for k in range(K):
                if w[k] > 0:
                    acc += (w[k] / d) * v[i, k, h].float()
            vm[i, h] = acc.to(BF16)
            sm[i, h] = torch.log2(d) + mx
    t = {"v": v, "s": s, "v_merged": vm, "s_merged": sm}
    meta = {"family": "combine", "lse_base": "2", "lse_empty": "-inf"}
    return t, meta


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(20261202)
    manifest = {}

    def save(name, tensors, meta, code):
        path = os.path.join(out, name + ".safetensors")
        attnvet.dump(path, tensors, metadata=meta)
        manifest[name + ".safetensors"] = {"exit": code}

    t, m, w = dense_bundle(g, "b", "batch", 2, [3, 3], [9, 9], 8, 2, 32, 32, causal=True, softcap=20.0)
    assert w < 0.05, w
    save("dense_batch_causal_ok", t, m, 0)
    t, m, _ = dense_bundle(g, "v", "varlen", 3, [4, 1, 6], [7, 3, 6], 4, 4, 32, 16, wl=2, wr=1,
                           alibi=True, sink=True, lse_base="2")
    save("dense_varlen_window_ok", t, m, 0)
    t, m, _ = dense_bundle(g, "p", "paged", 2, [2, 2], [11, 4], 4, 2, 16, 16, causal=True, page=3)
    save("dense_paged_ok", t, m, 0)
    t, m, _ = dense_bundle(g, "tl", "batch", 2, [3, 3], [9, 9], 8, 2, 32, 32, causal=True, topleft=True)
    save("dense_topleft_causal", t, m, 1)
    t, m, _ = dense_bundle(g, "lse", "batch", 1, [4], [8], 4, 2, 32, 32, causal=True, lse_shift=1e-3)
    save("dense_lse_off", t, m, 1)
    t, m = mla_bundle(g)
    save("mla_ok", t, m, 0)
    t, m = mla_bundle(g, lse_mode="base2")
    save("mla_lse_base2", t, m, 1)
    t, m = mla_bundle(g, lse_mode="sink_included")
    save("mla_sink_in_lse", t, m, 1)
    t, m = combine_bundle(g)
    save("combine_ok", t, m, 0)
    t, m = combine_bundle(g, drop=True)
    save("combine_dropstate", t, m, 1)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
