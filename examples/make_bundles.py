#!/usr/bin/env python3
"""Make attnvet bundles with torch, independently of attnvet's Go code: the
inputs are built here (the kernels' layout, docs/kernels.md: paged pools,
block tables, index rows, S tokens per batch entry), o is computed by
examples/torch_worker.py's attention, and the files are written by the
Python package's writer (python/attnvet: attnvet.dump, pure Python, padded
header as the safetensors library writes it) and numpy.savez.

    /usr/bin/python3 examples/make_bundles.py OUTDIR

writes, with the exit code `attnvet check` must give each:

    sparse_ok.safetensors        0  correct output, BF16, metadata contract
    window_ok.safetensors        0  correct output, GQA, sink, window
    window_ok_fp32.npz           0  F32 containers of BF16 values, I64; needs flags
    sparse_perturbed.safetensors 1  the largest element of o off by 10%
    window_dropkey.safetensors   1  each query misses its oldest key
    sparse_truncated.safetensors 2  the file cut short
    window_badshape.safetensors  2  v with the wrong number of KV heads
    sparse_nan_seqused.npz       2  seqused_kv stored as float with a NaN
    sparse_q_not_bf16.safetensors 2 q holds values BF16 cannot represent
    sparse_pad_in_prefix.safetensors 2 a -1 inside an index row's prefix

and manifest.json: {file: {"exit": code, "args": [flags]}}.
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_worker import attention, PROFILE  # noqa: E402 (also puts python/ on sys.path)
import attnvet  # noqa: E402


def bf16(shape, g, scale=1.0):
    return (torch.randn(shape, generator=g) * scale).to(torch.bfloat16)


def sparse_inputs(g, B=2, S=2, H=8, D=64, win=16, idx_topk=24, BS=16, seqused=(21, 70)):
    """docs/kernels.md §1: ring window slots in ori_kv, compressed slots in cmp_kv,
    permuted block tables, index rows following the contract."""
    T, topk = B * S, win + idx_topk
    mb_ori = -(-win // BS)
    mb_cmp = -(-max(max(seqused) - win, 1) // BS)
    ori_bt = torch.randperm(B * mb_ori, generator=g).reshape(B, mb_ori).int()
    cmp_bt = torch.randperm(B * mb_cmp, generator=g).reshape(B, mb_cmp).int()
    idx = torch.full((T, topk), -1, dtype=torch.int32)
    for t in range(T):
        b, s = divmod(t, S)
        u = max(seqused[b] - S + 1 + s, 0)
        wv = min(win, u)
        cv = max(u - wv, 0)
        ct = min(idx_topk, cv)
        idx[t, :wv] = torch.randperm(wv, generator=g).int()
        idx[t, wv:wv + ct] = win + torch.randperm(cv, generator=g)[:ct].int()
    return {
        "q": bf16((T, H, D), g),
        "ori_kv": bf16((B * mb_ori, BS, 1, D), g),
        "ori_block_table": ori_bt,
        "cmp_kv": bf16((B * mb_cmp, BS, 1, D), g),
        "cmp_block_table": cmp_bt,
        "cmp_sparse_indices": idx,
        "attn_sink": torch.randn(H, generator=g) + 1,
        "seqused_kv": torch.tensor(seqused, dtype=torch.int32),
    }, {"family": "sparse", "softmax_scale": repr(D ** -0.5), "index_topk": str(idx_topk),
        "window": str(win), "tokens_per_batch": str(S)}


def window_inputs(g, T=40, H=8, Hkv=2, D=32, Dv=16, W=8):
    return {
        "q": bf16((T, H, D), g),
        "k": bf16((T, Hkv, D), g),
        "v": bf16((T, Hkv, Dv), g),
        "attn_sink": torch.randn(H, generator=g),
    }, {"family": "window", "softmax_scale": repr(0.125), "window": str(W)}


def main(out):
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(20240611)
    manifest = {}

    def emit(name, tensors, meta, code, args=(), npz=False):
        path = os.path.join(out, name)
        if npz:
            np.savez(path, **{k: v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy() for k, v in tensors.items()})
        else:
            attnvet.dump(path, tensors=tensors, metadata=meta)
        manifest[name] = {"exit": code, "args": list(args)}
        return path

    prof = dict(PROFILE)

    st, sm = sparse_inputs(g)
    so = attention(sm, st)
    emit("sparse_ok.safetensors", dict(st, o=so), dict(sm, **prof), 0)

    wt, wm = window_inputs(g)
    wo = attention(wm, wt)
    emit("window_ok.safetensors", dict(wt, o=wo), dict(wm, **prof), 0)

    # .npz has no metadata: BF16 values in F32 containers, I64 integers, flags.
    args = ["--family", "window", "--window", wm["window"], "--softmax-scale", wm["softmax_scale"]]
    for k, v in prof.items():
        args += ["--" + k.replace("_", "-"), v]
    emit("window_ok_fp32.npz", dict(wt, o=wo), {}, 0, args, npz=True)

    bad = so.clone().flatten()
    i = int(bad.float().abs().argmax())  # 10% of the largest |o| is far beyond its bound
    bad[i] = (bad[i].float() * 1.1).to(torch.bfloat16)
    bad = bad.reshape(so.shape)
    emit("sparse_perturbed.safetensors", dict(st, o=bad), dict(sm, **prof), 1)

    # A kernel that drops each query's oldest key: a window one shorter.
    dropped = attention(dict(wm, window=str(int(wm["window"]) - 1)), wt)
    emit("window_dropkey.safetensors", dict(wt, o=dropped), dict(wm, **prof), 1)

    p = emit("sparse_truncated.safetensors", dict(st, o=so), dict(sm, **prof), 2)
    with open(p, "rb+") as f:
        f.truncate(os.path.getsize(p) - 100)

    emit("window_badshape.safetensors", dict(wt, v=wt["v"][:, :1].contiguous(), o=wo), dict(wm, **prof), 2)

    nan = dict(st, o=so, seqused_kv=torch.tensor([21.0, float("nan")]))
    emit("sparse_nan_seqused.npz", nan, {}, 2, ["--family", "sparse", "--index-topk", sm["index_topk"],
                                               "--tokens-per-batch", sm["tokens_per_batch"], "--in-dtype", "bf16"], npz=True)

    q = st["q"].float()
    q[0, 0, 0] += 2 ** -12  # not a BF16 value
    emit("sparse_q_not_bf16.safetensors", dict(st, q=q, o=so), dict(sm, **prof), 2)

    pad = st["cmp_sparse_indices"].clone()
    pad[3, 2] = -1
    emit("sparse_pad_in_prefix.safetensors", dict(st, cmp_sparse_indices=pad, o=so), dict(sm, **prof), 2)

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    print(f"wrote {len(manifest)} bundles to {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
