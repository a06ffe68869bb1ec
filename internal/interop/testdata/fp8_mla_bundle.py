# Independent FlashMLA FP8 sparse-decode bundles, following SPEC-flashmla.md's
# byte layout with numpy (torch only for the e4m3fn and bf16 casts).
import json, struct, sys
import numpy as np

def dec(c):  # OCP e4m3fn by its definition
    e, m = (c >> 3) & 15, c & 7
    v = m * 2.0 ** -9 if e == 0 else (1 + m / 8) * 2.0 ** (e - 7)
    return -v if c & 0x80 else v
POS = np.array([dec(c) for c in range(127)])  # codes 0..126 (127 is NaN)

def e4m3(x):  # float32 -> (codes uint8, decoded float64), RNE, |x| <= 448
    x = np.asarray(x, dtype=np.float64)
    codes = np.zeros(x.shape, dtype=np.uint8)
    for i, v in enumerate(x):
        d = np.abs(POS - abs(v))
        best = np.flatnonzero(d == d.min())
        c = int(best[0]) if len(best) == 1 else int([b for b in best if b % 2 == 0][0])
        codes[i] = c | (0x80 if v < 0 else 0)
    return codes, np.array([dec(int(c)) for c in codes])

def bf16(x):  # RNE on the float32 bits
    f = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    u = f.view(np.uint32).astype(np.uint64)
    h = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    back = (h.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return h, back

def quant_tile(x):
    amax = np.float32(np.abs(x).max())
    a = max(np.float32(amax / np.float32(448)), np.float32(1e-4))
    inv = np.float32(2.0 ** np.ceil(np.log2(np.float64(a))))
    codes, vals = e4m3(x / inv)
    return codes, vals * np.float64(inv), inv

def build(layout, NB, pbs, rng):
    nope, tile = (512, 128) if layout == "fp8_v32" else (448, 64)
    dqk, bpt = nope + 64, (656 if layout == "fp8_v32" else 584)
    raw = np.zeros((NB, pbs * bpt), dtype=np.uint8)
    deq = np.zeros((NB * pbs, dqk))
    for s in range(NB * pbs):
        pg, off = divmod(s, pbs)
        k = (rng.standard_normal(dqk) / 10).astype(np.float32)
        k[rng.integers(0, nope)] *= 40  # an outlier: a tile scale away from the others
        codes, scales, vals = [], [], []
        for t in range(nope // tile):
            c, v, inv = quant_tile(k[t * tile:(t + 1) * tile])
            codes.append(c); scales.append(inv); vals.append(v)
        rb, rv = bf16(k[nope:])
        deq[s, :nope] = np.concatenate(vals); deq[s, nope:] = rv
        page = raw[pg]
        if layout == "fp8_v32":
            b = off * 656
            page[b:b + 512] = np.concatenate(codes)
            page[b + 512:b + 528] = np.frombuffer(np.array(scales, dtype='<f4').tobytes(), np.uint8)
            page[b + 528:b + 656] = np.frombuffer(rb.astype('<u2').tobytes(), np.uint8)
        else:
            b = off * 576
            page[b:b + 448] = np.concatenate(codes)
            page[b + 448:b + 576] = np.frombuffer(rb.astype('<u2').tobytes(), np.uint8)
            sc = pbs * 576 + off * 8
            page[sc:sc + 7] = [int(np.log2(x)) + 127 for x in scales]
            page[sc + 7] = 0
    return raw, deq

def poison(raw, layout, pbs, slot):
    pg, off = divmod(slot, pbs)
    if layout == "fp8_v32":
        raw[pg, off * 656:(off + 1) * 656] = 0xFF
    else:
        raw[pg, off * 576:(off + 1) * 576] = 0xFF
        raw[pg, pbs * 576 + off * 8:pbs * 576 + off * 8 + 8] = 0xFF

def st_write(path, tensors, meta):
    hdr, blobs, off = {"__metadata__": meta}, [], 0
    for name, (dt, shape, data) in tensors.items():
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data); off += len(data)
    h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)

def main(layout, out, perturb, seed, npz=False):
    rng = np.random.default_rng(seed)
    b, sq, H, NB, pbs, topk = 2, 1, 8, 3, 53 if layout == "fp8_v32" else 64, 100
    raw, deq = build(layout, NB, pbs, rng)
    dqk = deq.shape[1]
    q = np.clip(rng.standard_normal((b, sq, H, dqk)), -1, 1).astype(np.float32)
    qb, qv = bf16(q)
    idx = rng.integers(0, NB * pbs // 2, size=(b, sq, topk)).astype(np.int32)
    idx[rng.random(idx.shape) < 0.2] = -1
    idx[0, 0, 64:] = -1  # a whole second 64-key block invalid for one row
    used = set(int(x) for x in idx.ravel() if x >= 0)
    for s in range(NB * pbs):
        if s not in used:
            poison(raw, layout, pbs, s)
    scale = dqk ** -0.55
    o = np.zeros((b, sq, H, 512)); lse = np.zeros((b, H, sq))
    for bi in range(b):
        for si in range(sq):
            rows = [int(x) for x in idx[bi, si] if x != -1]
            K = deq[rows]; V = K[:, :512]
            for h in range(H):
                x = scale * (K @ qv[bi, si, h])
                m = x.max(); p = np.exp(x - m)
                o[bi, si, h] = p @ V / p.sum(); lse[bi, h, si] = m + np.log(p.sum())
    if perturb:
        o[1, 0, 3, 100] += 0.02 * max(1e-3, abs(o[1, 0, 3, 100])) + 0.01
    ob, _ = bf16(o.astype(np.float32))
    meta = {"family": "mla", "kv_layout": layout, "dequant": "bf16", "profile": "bf16rne",
            "softmax_scale": repr(scale), "lse_base": "e", "lse_empty": "+inf", "lse_sink": "excluded"}
    bpt = 656 if layout == "fp8_v32" else 584
    tensors = {
        "q": ("BF16", q.shape, qb.astype('<u2').tobytes()),
        "k_cache": ("U8", (NB, pbs, 1, bpt), raw.tobytes()),
        "indices": ("I32", idx.shape, idx.astype('<i4').tobytes()),
        "out": ("BF16", o.shape, ob.astype('<u2').tobytes()),
        "softmax_lse": ("F32", lse.shape, lse.astype('<f4').tobytes()),
    }
    st_write(out, tensors, meta)

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4]))
