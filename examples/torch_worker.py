#!/usr/bin/env python3
"""Attention in torch with BF16 tensors, attnvet's sparse, window and dense
families (dense: no paged KV cache, no ALiBi; softmax_lse returned when a
case declares it): an external kernel that speaks attnvet's exec protocol
(docs/worker.md).

    attnvet fuzz --target exec:'/usr/bin/python3 examples/torch_worker.py' --time 60s

It computes attention the way a framework does: scores = q @ k^T as a BF16
matmul, softmax in FP32 with the sink in the denominator, P cast to BF16,
o = P @ V as a BF16 matmul, o in BF16.

What torch's CPU BF16 matmul accumulates in depends on the right operand's
layout (run --probe for the table on your machine; docs/interop.md has
ours): column-major (A @ B.t() with B stored row-major) accumulates in FP32
and rounds the result to BF16; row-major (p @ v with v as stored)
accumulates in BF16 unless oneDNN's GEMM takes the product. So both
matmuls here pass a column-major right operand, with explicit strides, and
the worker declares

    in bf16, score bf16 (the q.k^T result is stored in BF16), p bf16,
    acc fp32, out bf16, out_rounding rne

after checking at startup that its matmul accumulates in FP32 on this
machine (it declares acc_dtype bf16 otherwise). oneDNN is turned off: its
BF16 GEMM flushes subnormals to zero, which no precision profile declares.

Modes:
    (no argument)  serve the protocol on stdin/stdout
    --naive        o = p @ v with v as stored, declaring acc fp32 without
                   checking: what most code does and assumes
    --onednn       keep oneDNN on (subnormals flushed)
    --probe        print what torch's CPU BF16 matmul accumulates in, per
                   layout and inner dimension, and exit

Requires torch (Debian: python3-torch). Logs go to stderr: stdout carries
frames only.
"""

import os
import sys

import torch

# The attnvet package from this checkout (python/), or an installed one.
_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python")
if os.path.isdir(os.path.join(_PY, "attnvet")):
    sys.path.insert(0, _PY)
import attnvet.worker  # noqa: E402

PROFILE = {
    "in_dtype": "bf16", "score_dtype": "bf16", "p_dtype": "bf16",
    "acc_dtype": "fp32", "out_dtype": "bf16", "out_rounding": "rne",
}


def log(*a):
    print("torch_worker:", *a, file=sys.stderr, flush=True)


# ---- attention ----

def mm(a, b_rows, naive=False):
    """a @ b_rows^T for BF16 a [M, K] and b_rows [N, K], with the right
    operand a column-major view of b_rows: torch's FP32-accumulating path.

    The strides are set explicitly. b_rows.contiguous().t() is not enough:
    for N = 1 it has strides (1, 1), torch takes it for a row-major [K, 1]
    and accumulates in BF16 (attnvet found this: docs/interop.md).
    With naive, the right operand is row-major [K, N] (p @ v as most code
    writes it), which accumulates in BF16 on small products."""
    N, K = b_rows.shape
    if naive:
        return a @ b_rows.t().contiguous()
    return a @ b_rows.contiguous().as_strided((K, N), (1, K))


def softmax_sink(x, sink):
    """Rows of x [R, n] (FP32, -inf where masked) with per-row sinks [R]
    (-inf = none): e^x / (sum e^x + e^sink), in FP32. A +inf sink gives 0."""
    m = torch.maximum(x.amax(dim=1), sink)
    finite = torch.isfinite(m)
    m = torch.where(finite, m, torch.zeros_like(m))
    e = torch.exp(x - m[:, None])
    l = e.sum(dim=1) + torch.exp(sink - m)
    p = e / l[:, None]
    return torch.where(finite[:, None], p, torch.zeros_like(p))


def sparse(meta, t, naive):
    q = t["q"].to(torch.bfloat16)
    T, H, D = q.shape
    S = int(meta.get("tokens_per_batch", "1"))
    idx = t["cmp_sparse_indices"].long()
    topk = idx.shape[1]
    win = topk - int(meta["index_topk"]) if "index_topk" in meta else int(meta["window"])
    ori = t["ori_kv"].to(torch.bfloat16)
    BS = ori.shape[1]
    ori = ori.reshape(-1, D)
    obt = t["ori_block_table"].long()
    cmp = t["cmp_kv"].to(torch.bfloat16).reshape(-1, D) if "cmp_kv" in t else torch.empty(0, D, dtype=torch.bfloat16)
    cbt = t["cmp_block_table"].long() if "cmp_block_table" in t else torch.empty(obt.shape[0], 0, dtype=torch.long)
    seq = t["seqused_kv"].long()
    sink = t["attn_sink"].float() if "attn_sink" in t else torch.full((H,), float("-inf"))
    scale = torch.tensor(float(meta.get("softmax_scale", D ** -0.5)), dtype=torch.float32)
    o = torch.zeros(T, H, D, dtype=torch.bfloat16)
    for tok in range(T):
        b, s = divmod(tok, S)
        u = max(int(seq[b]) - S + 1 + s, 0)
        wv = min(win, u)
        cv = max(u - wv, 0)
        r = idx[tok]
        wr = r[(r >= 0) & (r < wv)]
        cr = r[(r >= win) & (r - win < cv)] - win
        rows = [ori[obt[b, wr // BS] * BS + wr % BS], cmp[cbt[b, cr // BS] * BS + cr % BS]]
        kv = torch.cat(rows)                            # [n, D]: one row is key and value
        if kv.shape[0] == 0:
            continue                                   # no keys: o = 0
        x = mm(q[tok], kv).float() * scale              # [H, n]
        p = softmax_sink(x, sink).to(torch.bfloat16)
        o[tok] = mm(p, kv.t(), naive)                   # P @ V
    return o


def window(meta, t, naive):
    q = t["q"].to(torch.bfloat16)
    k = t["k"].to(torch.bfloat16)
    v = t["v"].to(torch.bfloat16)
    T, H, D = q.shape
    Hkv, Dv = k.shape[1], v.shape[2]
    G = H // Hkv
    W = int(meta.get("window", "0"))
    sink = t["attn_sink"].float() if "attn_sink" in t else torch.full((H,), float("-inf"))
    scale = torch.tensor(float(meta.get("softmax_scale", D ** -0.5)), dtype=torch.float32)
    pos = torch.arange(T)
    lo = (pos - W + 1).clamp(min=0) if W > 0 else torch.zeros(T, dtype=torch.long)
    allowed = (pos[None, :] <= pos[:, None]) & (pos[None, :] >= lo[:, None])  # [query, key]
    o = torch.empty(T, H, Dv, dtype=torch.bfloat16)
    for g in range(Hkv):
        qg = q[:, g * G:(g + 1) * G, :].reshape(T * G, D)
        x = mm(qg, k[:, g, :]).float() * scale          # [T*G, T]
        x = x.view(T, G, T).masked_fill(~allowed[:, None, :], float("-inf")).reshape(T * G, T)
        p = softmax_sink(x, sink[g * G:(g + 1) * G].repeat(T)).to(torch.bfloat16)
        o[:, g * G:(g + 1) * G, :] = mm(p, v[:, g, :].t(), naive).view(T, G, Dv)
    return o


def lse_rows(x, sink, meta):
    """The lse of rows x [R, n] (FP32 scores, -inf where masked; sinks
    [R]) in the request's convention (lse_base, lse_empty, lse_sink;
    CONTRACTS.md): ln of the keys' sum of e^x, the sink's e^sink added
    when lse_sink=included, a row without keys lse_empty, base 2 scaled by
    log2 e. In FP32."""
    R = x.shape[0]
    if x.shape[1] == 0:
        v = torch.full((R,), float("-inf"))
    else:
        v = torch.logsumexp(x, dim=1)             # -inf for a row without keys
    empty = torch.isneginf(v)
    if meta.get("lse_sink") == "included":
        v = torch.logaddexp(v, sink)
        empty = empty & torch.isneginf(sink)
    v = torch.where(empty, torch.full_like(v, float("inf") if meta.get("lse_empty") == "+inf" else float("-inf")), v)
    if meta.get("lse_base") == "2":
        v = v * torch.tensor(1.4426950408889634, dtype=torch.float32)
    return v


def dense(meta, t, naive):
    """The dense family (FlashAttention's names, varlen layout): windows
    with bottom-right alignment, softcap, learnable_sink, seqused_k, and
    softmax_lse when the request asks for it (outputs=o,lse). Paged KV
    caches and ALiBi are not handled: such a request is answered with an
    error."""
    if "block_table" in t or "alibi_slopes" in t:
        raise ValueError("this worker does not handle a paged KV cache or ALiBi")
    q = t["q"].to(torch.bfloat16)
    k = t["k"].to(torch.bfloat16)
    v = t["v"].to(torch.bfloat16)
    T, H, D = q.shape
    Hkv, Dv = k.shape[1], v.shape[2]
    G = H // Hkv
    cuq, cuk = t["cu_seqlens_q"].long(), t["cu_seqlens_k"].long()
    used = t["seqused_k"].long() if "seqused_k" in t else None
    wl, wr = int(meta.get("window_left", "-1")), int(meta.get("window_right", "-1"))
    cap = float(meta.get("softcap") or 0)
    sink = t["learnable_sink"].float() if "learnable_sink" in t else torch.full((H,), float("-inf"))
    scale = torch.tensor(float(meta.get("softmax_scale", D ** -0.5)), dtype=torch.float32)
    want_lse = "lse" in meta.get("outputs", "o").split(",")
    o = torch.zeros(T, H, Dv, dtype=torch.bfloat16)
    lse = torch.zeros(T, H, dtype=torch.float32)
    for b in range(cuq.shape[0] - 1):
        q0, q1, k0 = int(cuq[b]), int(cuq[b + 1]), int(cuk[b])
        sq, sk = q1 - q0, int(cuk[b + 1]) - k0
        if used is not None:
            sk = min(sk, max(int(used[b]), 0))
        if sq == 0:
            continue
        i, j = torch.arange(sq)[:, None] + (sk - sq), torch.arange(sk)[None, :]
        allowed = torch.ones(sq, sk, dtype=torch.bool)
        if wl >= 0:
            allowed &= j >= i - wl
        if wr >= 0:
            allowed &= j <= i + wr
        for g in range(Hkv):
            sg = sink[g * G:(g + 1) * G].repeat(sq)
            if sk == 0:
                x = torch.empty(sq * G, 0)
            else:
                qg = q[q0:q1, g * G:(g + 1) * G, :].reshape(sq * G, D)
                x = mm(qg, k[k0:k0 + sk, g, :]).float() * scale
                if cap > 0:
                    x = cap * torch.tanh(x / cap)
                x = x.view(sq, G, sk).masked_fill(~allowed[:, None, :], float("-inf")).reshape(sq * G, sk)
                p = softmax_sink(x, sg).to(torch.bfloat16)
                o[q0:q1, g * G:(g + 1) * G, :] = mm(p, v[k0:k0 + sk, g, :].t(), naive).view(sq, G, Dv)
            if want_lse:
                lse[q0:q1, g * G:(g + 1) * G] = lse_rows(x, sg, meta).view(sq, G)
    return {"o": o, "lse": lse} if want_lse else o


def attention(meta, tensors, naive=False):
    fam = meta.get("family") or ("sparse" if "ori_kv" in tensors else "window")
    return {"sparse": sparse, "dense": dense}.get(fam, window)(meta, tensors, naive)


# ---- what does torch's CPU BF16 matmul accumulate in? ----

def operand(layout, K, N, g=None):
    """The right operand [K, N] of a probe (ones, or normal with g), with
    explicit strides: 'bt' column-major (1, K), as mm() passes it; 'b'
    row-major (N, 1), as a freshly stored v is (for N = 1 that is (1, 1),
    which is also what v.t().contiguous().t() gives then)."""
    rows = torch.ones(N, K) if g is None else torch.randn(N, K, generator=g)
    rows = rows.to(torch.bfloat16)
    if layout == "bt":
        return rows.as_strided((K, N), (1, K))
    v = torch.empty(K, N, dtype=torch.bfloat16)
    v.copy_(rows.t())
    assert v.stride() == (N, 1)
    return v


def accumulates(layout, M, K, N):
    """'fp32' or 'bf16': what a [M,K] @ [K,N] BF16 product accumulates in.
    Row 0 of A is [1, e, e, ...] with e = 2^-9, B is ones: the exact dot is
    1 + (K-1) e, which rounds to a BF16 above 1 for K >= 4; a BF16
    accumulator absorbs each e (half an ulp of 1 is 2^-8) and returns 1."""
    e = 2.0 ** -9
    a = torch.full((M, K), e, dtype=torch.bfloat16)
    a[:, 0] = 1
    got = (a @ operand(layout, K, N))[0, 0].item()
    if got == 1.0:
        return "bf16"
    exact = 1 + (K - 1) * e
    return "fp32" if abs(got - exact) <= 2 ** -8 * exact else f"? {got}"


def rounding_check(layout, M, K, N, seed=0):
    """Fraction of outputs equal to the exact product rounded once to
    BF16 (random normal operands): ~1 for FP32 accumulation + one rounding."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(M, K, generator=g).to(torch.bfloat16)
    b = operand(layout, K, N, g)
    exact = a.double() @ b.double()
    return ((a @ b) == exact.float().to(torch.bfloat16)).double().mean().item()


PROBE_SIZES = [(1, 1), (1, 8), (8, 1), (16, 16), (64, 64)]
PROBE_K = [16, 64, 256, 1024, 4096]
LAYOUTS = (
    ("bt", "B col-major, strides (1,K)"),
    ("b", "B row-major, strides (N,1)"),
)


def probe():
    print(f"torch {torch.__version__}, oneDNN (mkldnn) enabled: {torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled}")
    print("accumulator of C = A @ B for BF16 A [M,K], B [K,N] (absorption test), per inner dimension K:")
    print(f"{'right operand B':<28} {'M x N':>7} " + " ".join(f"{k:>6}" for k in PROBE_K))
    for layout, desc in LAYOUTS:
        for M, N in PROBE_SIZES:
            row = " ".join(f"{accumulates(layout, M, K, N):>6}" for K in PROBE_K)
            print(f"{desc:<28} {f'{M}x{N}':>7} {row}")
    print("fraction of outputs equal to the exact product rounded once to BF16 (random normal operands):")
    for layout, desc in LAYOUTS:
        for M, N in ((8, 1), (16, 16), (64, 64)):
            row = " ".join(f"{rounding_check(layout, M, K, N):>6.4f}" for K in PROBE_K)
            print(f"{desc:<28} {f'{M}x{N}':>7} {row}")


def declared_profile(naive):
    """The profile to declare: acc fp32 if mm() accumulates in FP32 here
    on every shape checked (M, N in 1..16, K from 4 to 4096), else bf16."""
    if naive:
        return dict(PROFILE)
    e = 2.0 ** -9
    bad = []
    for M, N in ((1, 1), (1, 5), (5, 1), (16, 16)):
        for K in (4, 5, 16, 100, 512, 4096):
            a = torch.full((M, K), e, dtype=torch.bfloat16)
            a[:, 0] = 1
            if mm(a, torch.ones(N, K, dtype=torch.bfloat16))[0, 0].item() == 1.0:
                bad.append((M, K, N))
    if bad:
        log(f"mm() does not accumulate in FP32 here (M,K,N = {bad}); declaring acc_dtype bf16")
        return dict(PROFILE, acc_dtype="bf16")
    return dict(PROFILE)


# ---- the protocol: attnvet.worker handles it ----

def serve(naive):
    prof = declared_profile(naive)
    how = "naive p @ v" if naive else "column-major matmuls"
    log(f"torch {torch.__version__}, {how}, oneDNN {'on' if torch.backends.mkldnn.enabled else 'off'}, profile {prof}")
    attnvet.worker.serve(lambda case: attention(case.meta, case.tensors, naive), profile=prof,
                         name="torch-bf16" + ("-naive" if naive else ""), arrays="torch")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args == ["--probe"]:
        probe()
    elif set(args) <= {"--naive", "--onednn"} and len(set(args)) == len(args):
        if "--onednn" not in args:
            torch.backends.mkldnn.enabled = False  # oneDNN's BF16 GEMM flushes subnormals
        serve(naive="--naive" in args)
    else:
        sys.exit(__doc__)
