#!/usr/bin/env python3
"""A protocol 2 exec worker (docs/worker.md) for the dense family in numpy
float64, fp32 output, that reads quantized inputs: it declares
quantized=fp8,int8_kv,nvfp4_kv,int4_kv and dequantizes them itself,
independently of attnvet's Go code, from the formats' documentation
(docs/interop.md "Dense FP8 inputs", "INT8 KV caches", "NVFP4 KV caches",
"INT4 KV caches"; docs/kernels.md
§5, §10-12, §15):

    FP8 (FA3)     q̂ = e4m3(q)·q_descale[b, g], likewise k̂ and v̂ (g the KV head)
    INT8 (ORT)    x̂ = T(FP32(code·scale)), scale [1] or [Hkv, D]
    INT4 (ORT)    the same with U8 bytes of two codes, nibble − 8, element
                  2i in the low nibble
    NVFP4         x̂ = T(FP32(e2m1·e4m3(block scale)·global)), element 2i in
    (flashinfer)  the low nibble, one block scale per 16 values of a head

T is the request's in_dtype (bf16, fp16 or fp32). Then exact attention:
varlen or paged KV, seqused_k, bottom-right aligned windows, softcap,
ALiBi (abs, fa2_causal, flashinfer), learnable_sink, lse and max_logit in
the declared conventions.

    attnvet fuzz --family dense --target exec:'/usr/bin/python3 examples/numpy_dense_worker.py'

Flags, for the tests (each a wrong kernel that must fail):
    --no-quantized     declare nothing quantized (those cases are skipped)
    --bad int8-scale   INT8 and INT4: ignore the scales (x̂ = code)
    --bad int4-bias    INT4: the +8 bias not removed (x̂ = nibble·scale)
    --bad block-scale  NVFP4: ignore the block scales (read as 1)
    --bad global       NVFP4: ignore the global scale (read as 1)
    --bad v-descale    FP8: ignore v_descale
"""
import json, struct, sys
import numpy as np

BAD = sys.argv[sys.argv.index("--bad") + 1] if "--bad" in sys.argv else None
DECL = {"protocol": "2", "profile": "fp32", "name": "numpy-dense", "families": "dense"}
if "--no-quantized" not in sys.argv:
    DECL["quantized"] = "fp8,int8_kv,nvfp4_kv,int4_kv"
DT = {"BF16": "<u2", "F16": "<f2", "F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8",
      "F8_E4M3": "u1", "U8": "u1", "I8": "i1"}


def e4m3_table():
    """The 256 e4m3fn values (no infinities; 0x7f and 0xff are NaN)."""
    t = np.zeros(256)
    for b in range(256):
        s, e, m = -1.0 if b & 0x80 else 1.0, (b >> 3) & 0xF, b & 7
        if e == 15 and m == 7:
            t[b] = np.nan
        elif e == 0:
            t[b] = s * m / 8 * 2.0 ** -6
        else:
            t[b] = s * (1 + m / 8) * 2.0 ** (e - 7)
    return t


E4M3 = e4m3_table()
E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6])


def read():
    n = sys.stdin.buffer.read(8)
    if len(n) < 8:
        sys.exit(0)
    b = sys.stdin.buffer.read(struct.unpack("<Q", n)[0])
    h = struct.unpack_from("<Q", b)[0]
    hdr, ts = json.loads(b[8:8 + h]), {}
    for k, v in hdr.items():
        if k != "__metadata__":
            a = np.frombuffer(b[8 + h + v["data_offsets"][0]:8 + h + v["data_offsets"][1]], DT[v["dtype"]])
            if v["dtype"] == "BF16":
                a = (a.astype("<u4") << 16).view("<f4")
            ts[k] = (v["dtype"], a.reshape(v["shape"]))
    return hdr.get("__metadata__", {}), ts


def write(meta, outs=()):
    hdr, data = {"__metadata__": meta}, b""
    for name, a in outs:
        raw = np.ascontiguousarray(a, "<f4").tobytes()
        hdr[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr).encode()
    sys.stdout.buffer.write(struct.pack("<QQ", 8 + len(h) + len(data), len(h)) + h + data)
    sys.stdout.buffer.flush()


def to_format(x32, fmt):
    """Round float32 values to the attention dtype T (RNE), as float64."""
    fmt = fmt.lower()
    if fmt in ("bf16", "bfloat16"):
        u = np.ascontiguousarray(x32, np.float32).view(np.uint32).astype(np.uint64)
        u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
        return (u.astype(np.uint32)).view(np.float32).astype(np.float64)
    if fmt in ("fp16", "f16", "float16"):
        return x32.astype(np.float16).astype(np.float64)
    return x32.astype(np.float64)


def floats(t):
    dt, a = t
    return E4M3[a] if dt == "F8_E4M3" else a.astype(np.float64)


def dequant(meta, ts):
    """The inputs q, k, v (k_cache, v_cache) as float64 values of the
    problem the kernel solves."""
    kn, vn = ("k_cache", "v_cache") if "k_cache" in ts else ("k", "v")
    fmt = meta.get("in_dtype", "fp32")
    q = floats(ts["q"])
    if "k_scale" in ts:  # INT8 or INT4 KV
        out = []
        for name, sn in ((kn, "k_scale"), (vn, "v_scale")):
            dt, codes = ts[name]
            if dt == "U8":  # INT4: two codes a byte, +8 bias, element 2i low
                nib = np.stack([codes & 0xF, codes >> 4], axis=-1).reshape(codes.shape[:-1] + (2 * codes.shape[-1],))
                codes = nib.astype(np.int16) - (0 if BAD == "int4-bias" else 8)
            codes = codes.astype(np.float32)
            s = ts[sn][1].astype(np.float32)
            s = s.reshape(-1)[0] if s.size == 1 else s.reshape(codes.shape[-2:])
            if BAD == "int8-scale":
                s = np.float32(1)
            out.append(to_format(codes * s, fmt))  # FP32 product, then T
        return q, out[0], out[1]
    if "k_block_scale" in ts:  # NVFP4 KV
        out = []
        for name, p in ((kn, "k"), (vn, "v")):
            packed = ts[name][1]
            codes = np.stack([packed & 0xF, packed >> 4], axis=-1).reshape(packed.shape[:-1] + (2 * packed.shape[-1],))
            block = E4M3[ts[p + "_block_scale"][1]]
            if BAD == "block-scale":
                block = np.ones_like(block)
            g = float(ts[p + "_global_scale"][1].reshape(-1)[0])
            if BAD == "global":
                g = 1.0
            x = E2M1[codes] * np.repeat(block, 16, axis=-1) * g  # exact in float64
            out.append(to_format(x.astype(np.float32), fmt))  # one FP32 rounding, then T
        return q, out[0], out[1]
    k, v = floats(ts[kn]), floats(ts[vn])
    if "q_descale" in ts or "k_descale" in ts or "v_descale" in ts:  # FP8: per (sequence, KV head)
        cuq = ts["cu_seqlens_q"][1].astype(np.int64)
        H, Hkv = q.shape[1], k.shape[-2]
        ones = np.ones((len(cuq) - 1, Hkv))
        dq, dk, dv = (ts[n][1].astype(np.float64) if n in ts else ones for n in ("q_descale", "k_descale", "v_descale"))
        if BAD == "v-descale":
            dv = ones
        q = q.copy()
        for b in range(len(cuq) - 1):
            q[cuq[b]:cuq[b + 1]] *= np.repeat(dq[b], H // Hkv)[None, :, None]
        return q, ("descaled", k, dk), ("descaled", v, dv)
    return q, k, v


def keys(x, b, sk, ts, cuk):
    """Sequence b's first sk key rows [sk, Hkv, w] (paged or varlen), and
    the descales of an FP8 tensor."""
    ds = None
    if isinstance(x, tuple):
        _, x, d = x
        ds = d[b]
    if "block_table" in ts:
        bt = ts["block_table"][1].astype(np.int64)
        page = x.shape[1]
        j = np.arange(sk)
        pages = np.clip(bt[b, j // page], 0, x.shape[0] - 1)  # an unread entry may be anything
        rows = x[pages, j % page]
    else:
        rows = x[cuk[b]:cuk[b] + sk]
    if ds is not None:
        rows = rows * ds[None, :, None]
    return rows


def dense(meta, ts):
    q, k, v = dequant(meta, ts)
    T, H, D = q.shape
    kk = k[1] if isinstance(k, tuple) else k
    vv = v[1] if isinstance(v, tuple) else v
    Hkv, Dv = kk.shape[-2], vv.shape[-1]
    G = H // Hkv
    cuq = ts["cu_seqlens_q"][1].astype(np.int64)
    cuk = ts["cu_seqlens_k"][1].astype(np.int64) if "cu_seqlens_k" in ts else None
    used = ts["seqused_k"][1].astype(np.int64) if "seqused_k" in ts else None
    clen = ts["cache_seqlens"][1].astype(np.int64) if "cache_seqlens" in ts else None
    wl, wr = int(meta.get("window_left", "-1")), int(meta.get("window_right", "-1"))
    if meta.get("causal") == "true":
        wr = 0
    cap = float(meta.get("softcap") or 0)
    scale = float(meta.get("softmax_scale", D ** -0.5))
    sink = floats(ts["learnable_sink"]) if "learnable_sink" in ts else (floats(ts["attn_sink"]) if "attn_sink" in ts else np.full(H, -np.inf))
    slopes = floats(ts["alibi_slopes"]) if "alibi_slopes" in ts else None
    form = meta.get("alibi_form", "abs")
    outputs = meta.get("outputs", "o").split(",")
    o, lse, mlog = np.zeros((T, H, Dv)), np.zeros((T, H)), np.full((T, H), -np.inf)
    lk = np.full((T, H), -np.inf)  # ln Σ_j e^{x_j} over the keys (−inf: none)
    for b in range(len(cuq) - 1):
        q0, q1 = cuq[b], cuq[b + 1]
        sq = q1 - q0
        sk = used[b] if used is not None else (clen[b] if clen is not None else cuk[b + 1] - cuk[b])
        if sq == 0:
            continue
        i, j = np.arange(sq)[:, None], np.arange(sk)[None, :]
        d = i + (sk - sq)
        allowed = np.ones((sq, sk), bool)
        if wl >= 0:
            allowed &= j >= d - wl
        if wr >= 0:
            allowed &= j <= d + wr
        read = allowed.any(axis=0)  # keys some query attends; the others may hold NaN
        kb = np.where(read[:, None, None], keys(k, b, sk, ts, cuk), 0)
        vb = np.where(read[:, None, None], keys(v, b, sk, ts, cuk), 0)
        for h in range(H):
            x = scale * (kb[:, h // G] @ q[q0 + np.arange(sq), h].T).T  # [sq, sk]
            if cap > 0:
                x = cap * np.tanh(x / cap)
            if slopes is not None:
                dist = {"abs": -np.abs(d - j), "fa2_causal": j + 0 * d, "flashinfer": j - i}[form]
                x = x + slopes[h] * dist
            x = np.where(allowed, x, -np.inf)
            m = x.max(axis=1, initial=-np.inf)
            mlog[q0:q1, h] = m
            mm = np.maximum(m, sink[h])
            ok = mm < np.inf  # else a +inf sink takes all the weight: o = 0
            mm = np.where(np.isfinite(mm), mm, 0)
            e = np.exp(x - mm[:, None])
            den = e.sum(axis=1) + np.exp(sink[h] - mm)
            with np.errstate(invalid="ignore", divide="ignore"):
                oh = np.where((ok & (den > 0))[:, None], (e @ vb[:, h // G]) / den[:, None], 0)
            o[q0:q1, h] = oh
            has = np.isfinite(m)
            mk = np.where(has, m, 0)
            lk[q0:q1, h] = np.where(has, mk + np.log(np.exp(x - mk[:, None]).sum(axis=1)), -np.inf)
    res = [("o", o.astype(np.float32))]
    if "lse" in outputs:
        v, empty = lk, np.isneginf(lk)
        if meta.get("lse_sink") == "included":  # ln(Σ e^x + e^σ); a row with no key but a finite sink: σ
            v = np.logaddexp(v, sink[None, :])
            empty = empty & np.isneginf(sink)[None, :]
        v = np.where(empty, np.inf if meta.get("lse_empty") == "+inf" else -np.inf, v)
        if meta.get("lse_base") == "2":
            v = v * np.log2(np.e)
        with np.errstate(over="ignore"):
            res.append(("lse", v.astype(np.float32)))
    if "max_logit" in outputs:
        if meta.get("max_logit_base") == "2":
            mlog = mlog * np.log2(np.e)
        with np.errstate(over="ignore"):
            res.append(("max_logit", mlog.astype(np.float32)))
    return res


if __name__ == "__main__":  # python/tests/dense_worker.py imports dense()
    while True:
        meta, ts = read()
        if meta.get("request") == "hello":
            write(DECL)
            continue
        if meta.get("family") != "dense":
            write({"error": "this worker does the dense family only"})
            continue
        try:
            write({"seq": meta["seq"]}, dense(meta, ts))
        except Exception as ex:  # a refusal, not a crash: attnvet reports it
            write({"error": "%s: %s" % (type(ex).__name__, ex)})
