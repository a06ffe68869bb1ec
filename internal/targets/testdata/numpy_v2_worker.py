#!/usr/bin/env python3
# A protocol 2 exec worker (docs/worker.md "Protocol v2") for the targets
# tests: window attention in numpy float64, fp32 output; it declares an
# F16 sink, F32 q/k/v, the window family only and head dims up to 64, and
# refuses (error=...) any request whose tensors are not in those dtypes.
# The recheck tests (docs/worker.md "Rechecks") add flags:
#   --splits       declare splits=1,2,4 (a split it did not declare is refused)
#   --noisy        the second time a request's inputs are seen, o[0] gets one
#                  ulp more (a race that shows on a repeat): nondeterministic
#   --bad-split N  with split=N the softmax scale is doubled: split_dependent
import hashlib, json, struct, sys
import numpy as np

DT = {"BF16": "<u2", "F16": "<f2", "F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8"}
DECL = {"protocol": "2", "profile": "fp32", "name": "numpy-v2", "families": "window", "max_head_dim": "64",
        "dtype.q": "F32", "dtype.k": "F32", "dtype.v": "F32", "dtype.attn_sink": "F16"}
if "--splits" in sys.argv:
    DECL.update(name="numpy-recheck", splits="1,2,4")
NOISY = "--noisy" in sys.argv
BAD = sys.argv[sys.argv.index("--bad-split") + 1] if "--bad-split" in sys.argv else None
seen = {}

def read():
    n = sys.stdin.buffer.read(8)
    if len(n) < 8:
        sys.exit(0)
    b = sys.stdin.buffer.read(struct.unpack("<Q", n)[0])
    h = struct.unpack_from("<Q", b)[0]
    hdr, ts, dts = json.loads(b[8:8 + h]), {}, {}
    for k, v in hdr.items():
        if k != "__metadata__":
            a = np.frombuffer(b[8 + h + v["data_offsets"][0]:8 + h + v["data_offsets"][1]], DT[v["dtype"]])
            ts[k], dts[k] = a.reshape(v["shape"]).astype(np.float64), v["dtype"]
    return hdr.get("__metadata__", {}), ts, dts

def write(meta, o=None):
    hdr = {"__metadata__": meta, **({"o": {"dtype": "F32", "shape": list(o.shape), "data_offsets": [0, 4 * o.size]}} if o is not None else {})}
    h, data = json.dumps(hdr).encode(), b"" if o is None else o.astype("<f4").tobytes()
    sys.stdout.buffer.write(struct.pack("<QQ", 8 + len(h) + len(data), len(h)) + h + data)
    sys.stdout.buffer.flush()

while True:
    meta, t, dts = read()
    if meta.get("request") == "hello":
        write(DECL)
        continue
    bad = [k for k, d in dts.items() if DECL.get("dtype." + k, d) != d]
    if bad or meta.get("protocol") != "2" or meta.get("family") != "window":
        write({"error": "not as declared: %s %s %s" % (bad, meta.get("protocol"), meta.get("family"))})
        continue
    split = meta.get("split", "1")
    if split not in DECL.get("splits", "1").split(","):
        write({"error": "split %s not declared" % split})
        continue
    q, k, v, W, scale = t["q"], t["k"], t["v"], int(meta["window"]), float(meta["softmax_scale"])
    if split == BAD:
        scale *= 2
    (T, H, _), G = q.shape, q.shape[1] // k.shape[1]
    sink, o = t.get("attn_sink", np.full(H, -np.inf)), np.zeros((T, H, v.shape[2]))
    for i in range(T):
        lo = max(0, i - W + 1) if W else 0
        x = scale * np.einsum("khd,hd->hk", k[lo:i + 1][:, np.arange(H) // G], q[i])
        m = np.maximum(x.max(axis=1), sink)
        ok = m < np.inf
        e = np.exp(x[ok] - m[ok, None])
        o[i, ok] = np.einsum("hk,khd->hd", e, v[lo:i + 1][:, np.arange(H)[ok] // G]) / (e.sum(axis=1) + np.exp(sink[ok] - m[ok]))[:, None]
    o = o.astype(np.float32)
    key = hashlib.sha1(q.tobytes() + k.tobytes() + v.tobytes()).hexdigest()
    seen[key] = seen.get(key, 0) + 1
    if NOISY and seen[key] == 2 and o.size:
        o.flat[0] = np.nextafter(o.flat[0], np.float32(np.inf))
    write({"seq": meta["seq"]}, o)
