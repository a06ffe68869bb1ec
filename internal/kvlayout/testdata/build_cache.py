#!/usr/bin/python3
"""Build a FlashMLA FP8 KV cache (fp8_v32 or fp8_model1) with numpy only,
from the byte layout in SPEC-flashmla.md, independently of the Go code.

usage: build_cache.py LAYOUT NB PBS SEED OUTDIR

Writes OUTDIR/k.f32 (the BF16-valued K rows as float32, [NB*PBS, d_qk]),
OUTDIR/cache.u8 (the raw cache, pages STRIDE bytes apart), OUTDIR/deq.f64
(the exact dequantized K rows code*scale, [NB*PBS, d_qk]) and
OUTDIR/meta.txt ("stride N").
"""
import sys
import numpy as np

LAYOUTS = {  # d_nope, d_rope, tile, bytes per token
    "fp8_v32": (512, 64, 128, 656),
    "fp8_model1": (448, 64, 64, 584),
}


def e4m3_values():
    """Positive e4m3fn values of codes 0..126 (bias 7, 3 mantissa bits)."""
    out = []
    for c in range(127):
        e, m = c >> 3, c & 7
        out.append(m / 8.0 * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7))
    return np.array(out)


E4M3 = e4m3_values()


def e4m3_encode(x):
    """Nearest e4m3fn code of each float64 in x (|x| <= 464), ties to even code."""
    a = np.abs(x)
    hi = np.searchsorted(E4M3, a)          # first value >= a
    hi = np.minimum(hi, len(E4M3) - 1)
    lo = np.maximum(hi - 1, 0)
    dlo, dhi = a - E4M3[lo], E4M3[hi] - a
    code = np.where(dlo < dhi, lo, hi)
    tie = (dlo == dhi) & (lo != hi)
    code = np.where(tie, np.where(lo % 2 == 0, lo, hi), code)
    code = np.where(E4M3[hi] == a, hi, code)
    assert np.all(a <= 464)
    return (code | np.where(np.signbit(x), 0x80, 0)).astype(np.uint8)


def to_bf16_values(x):
    """Truncate float32 to BF16-representable float32 (inputs are BF16, as FlashMLA's)."""
    b = x.astype(np.float32).view(np.uint32) & np.uint32(0xFFFF0000)
    return b.view(np.float32)


def scale_inv(amax):
    a = np.float32(amax) / np.float32(448.0)
    a = max(a, np.float32(1e-4))
    m, e = np.frexp(np.float64(a))
    k = e - 1 if m == 0.5 else e
    return np.float32(2.0 ** k)


def main():
    layout, nb, pbs, seed, outdir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    d_nope, d_rope, tile, bpt = LAYOUTS[layout]
    d = d_nope + d_rope
    n = nb * pbs
    rng = np.random.default_rng(seed)
    k = (rng.standard_normal((n, d)) / 10).astype(np.float32)
    # edge rows: a zero tile, a huge tile, ties at amax 448 and 464, tiny values
    k[0, :tile] = 0
    if n > 1:
        k[1, :tile] *= 1e5
    if n > 2:
        k[2, :tile] = 0
        k[2, :6] = [448, 17, 19, -17, 2.0 ** -10, 3 * 2.0 ** -10]
    if n > 3:
        k[3, :tile] = 0
        k[3, :4] = [464, 232, -464, 1e-6]
    if n > 4:
        k[4, d_nope - tile:d_nope] *= 2.0 ** -20  # scale floor 2^-13, subnormal codes
    k = to_bf16_values(k)

    if layout == "fp8_v32":
        stride = (pbs + 1) * bpt  # quant.py allocates block_size+1 tokens per page
    else:
        stride = (pbs * bpt + 575) // 576 * 576  # quant.py pads each page to 576 bytes
    cache = np.zeros(nb * stride, dtype=np.uint8)
    deq = np.zeros((n, d), dtype=np.float64)
    for s in range(n):
        page, off = divmod(s, pbs)
        base = page * stride
        if layout == "fp8_v32":
            t0 = base + off * bpt
            nope_at, scale_at, rope_at = t0, t0 + 512, t0 + 528
        else:
            nope_at = base + off * 576
            rope_at = nope_at + 448
            scale_at = base + pbs * 576 + off * 8
        row = k[s]
        for t in range(d_nope // tile):
            x = row[t * tile:(t + 1) * tile]
            inv = scale_inv(np.max(np.abs(x)))
            codes = e4m3_encode(x.astype(np.float64) / np.float64(inv))
            cache[nope_at + t * tile:nope_at + (t + 1) * tile] = codes
            vals = E4M3[codes & 0x7F] * np.where(codes & 0x80, -1.0, 1.0)
            deq[s, t * tile:(t + 1) * tile] = vals * np.float64(inv)
            if layout == "fp8_v32":
                cache[scale_at + 4 * t:scale_at + 4 * t + 4] = np.frombuffer(np.float32(inv).tobytes(), np.uint8)
            else:
                m, e = np.frexp(np.float64(inv))
                cache[scale_at + t] = (e - 1) + 127
        rope = row[d_nope:]
        cache[rope_at:rope_at + 2 * d_rope] = (rope.view(np.uint32) >> 16).astype("<u2").view(np.uint8)
        deq[s, d_nope:] = rope.astype(np.float64)
    k.astype("<f4").tofile(outdir + "/k.f32")
    cache.tofile(outdir + "/cache.u8")
    deq.astype("<f8").tofile(outdir + "/deq.f64")
    with open(outdir + "/meta.txt", "w") as f:
        f.write("stride %d\n" % stride)


if __name__ == "__main__":
    main()
