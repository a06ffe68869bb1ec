"""Attention kernels the tests dump and serve: written here as a kernel
team would, from the semantics of docs/kernels.md (not from attnvet's code)."""

import numpy as np


def window_f64(q, k, v, sink, W, scale):
    """The window family in float64: query i attends keys max(0, i-W+1)..i
    (W = 0: all of 0..i), head h reads KV head h // (H / Hkv), the sink adds
    e^sink to the denominator (+inf: all of it, o = 0)."""
    T, H, _ = q.shape
    G = H // k.shape[1]
    o = np.zeros((T, H, v.shape[2]))
    for i in range(T):
        lo = max(0, i - W + 1) if W else 0
        for h in range(H):
            x = scale * (k[lo:i + 1, h // G].astype(np.float64) @ q[i, h].astype(np.float64))
            s = -np.inf if sink is None else float(sink[h])
            m = max(x.max(), s)
            if m == np.inf:
                continue  # a +inf sink takes all the weight: o = 0
            e = np.exp(x - m)
            o[i, h] = e @ v[lo:i + 1, h // G].astype(np.float64) / (e.sum() + np.exp(s - m))
    return o


def window_torch_bf16(q, k, v, sink, W, scale):
    """A BF16 window kernel with GQA and a sink in torch: scores as an FP32
    product of the BF16 inputs, softmax in FP32 with the sink in the
    denominator, P rounded to BF16, P·V accumulated in FP32, o rounded to
    BF16 (ties to even): attnvet's bf16rne profile."""
    import torch
    T, H, D = q.shape
    Hkv = k.shape[1]
    G = H // Hkv
    i = torch.arange(T)
    allowed = (i[None, :] <= i[:, None]) & ((i[None, :] > i[:, None] - W) if W else True)
    kk = k.float().repeat_interleave(G, dim=1)        # [T, H, D]: head h reads KV head h // G
    vv = v.float().repeat_interleave(G, dim=1)
    x = torch.einsum("thd,shd->hts", q.float(), kk) * scale
    x = x.masked_fill(~allowed, float("-inf"))
    m = torch.maximum(x.amax(-1), sink.float()[:, None])
    e = torch.exp(x - m[..., None])
    p = (e / (e.sum(-1) + torch.exp(sink.float()[:, None] - m))[..., None]).to(torch.bfloat16)
    o = torch.einsum("hts,shd->thd", p.float(), vv)
    return o.to(torch.bfloat16)
