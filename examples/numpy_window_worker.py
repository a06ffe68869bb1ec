#!/usr/bin/env python3
# A minimal attnvet exec worker (docs/worker.md): window-family attention in numpy float64, fp32 output.
import json, struct, sys
import numpy as np

DT = {"BF16": "<u2", "F16": "<f2", "F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8"}

def read():
    n = sys.stdin.buffer.read(8)
    if len(n) < 8:
        sys.exit(0)  # attnvet closed our stdin: done
    b = sys.stdin.buffer.read(struct.unpack("<Q", n)[0])
    h = struct.unpack_from("<Q", b)[0]
    hdr, ts = json.loads(b[8:8 + h]), {}
    for k, v in hdr.items():
        if k != "__metadata__":
            a = np.frombuffer(b[8 + h + v["data_offsets"][0]:8 + h + v["data_offsets"][1]], DT[v["dtype"]])
            ts[k] = ((a.astype("<u4") << 16).view("<f4") if v["dtype"] == "BF16" else a).reshape(v["shape"]).astype(np.float64)
    return hdr.get("__metadata__", {}), ts

def write(meta, o=None):
    hdr = {"__metadata__": meta, **({"o": {"dtype": "F32", "shape": list(o.shape), "data_offsets": [0, 4 * o.size]}} if o is not None else {})}
    h, data = json.dumps(hdr).encode(), b"" if o is None else o.astype("<f4").tobytes()
    sys.stdout.buffer.write(struct.pack("<QQ", 8 + len(h) + len(data), len(h)) + h + data)
    sys.stdout.buffer.flush()

while True:
    meta, t = read()
    if meta.get("request") == "hello":
        write({"profile": "fp32", "name": "numpy-window"})  # our precision: fp32 in and out
    elif meta.get("family") != "window":
        write({"error": "this worker does the window family only"})
    else:
        q, k, v, W, scale = t["q"], t["k"], t["v"], int(meta["window"]), float(meta["softmax_scale"])
        (T, H, _), G = q.shape, q.shape[1] // k.shape[1]
        sink, o = t.get("attn_sink", np.full(H, -np.inf)), np.zeros((T, H, v.shape[2]))
        for i in range(T):
            lo = max(0, i - W + 1) if W else 0
            for h in range(H):
                x = scale * (k[lo:i + 1, h // G] @ q[i, h])
                m = max(x.max(), sink[h])
                if m < np.inf:  # a +inf sink takes all the weight: o = 0
                    e = np.exp(x - m)
                    o[i, h] = e @ v[lo:i + 1, h // G] / (e.sum() + np.exp(sink[h] - m))
        write({}, o)
