"""attnvet from Python: write bundles, check them, serve a kernel as a worker.

    import attnvet
    attnvet.dump("case.safetensors", q=q, k=k, v=v, o=o, attn_sink=sink,
                 family="window", window=8, softmax_scale=0.125, profile="bf16")
    r = attnvet.check("case.safetensors")
    assert r.passed, r.message

Tensors are numpy arrays or torch tensors (torch.bfloat16 is stored as
BF16). numpy has no bfloat16: pass `attnvet.bf16(x)` to store a float array
as BF16 (its values must already be BF16 values, or pass round=True), or
store BF16 values in float32 and declare `in_dtype="bf16"`.
docs/python.md and docs/interop.md (the metadata contract).
"""

import os

from .safetensors import BF16, bf16, round_bf16, encode, decode
from ._check import AttnvetError, CheckResult, check, find_binary

__all__ = ["dump", "load", "check", "bf16", "round_bf16", "BF16", "CheckResult", "AttnvetError",
           "find_binary", "TENSORS"]

# The tensor names of the bundle contract (docs/interop.md).
TENSORS = ("q", "k", "v", "o", "ori_kv", "ori_block_table", "cmp_kv", "cmp_block_table",
           "cmp_sparse_indices", "seqused_kv", "attn_sink")


def _is_tensor(x):
    import numpy as np
    if isinstance(x, (BF16, np.ndarray)):
        return True
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "shape") and hasattr(x, "dtype")


def dump(path, tensors=None, metadata=None, **kw):
    """Writes a bundle (safetensors) to path and returns path.

    Keyword arguments that are arrays or tensors (numpy, torch, bf16(...))
    are tensors; the others (str, int, float, bool) are metadata, written
    as strings (floats by repr, which round-trips exactly). `tensors` and
    `metadata` dicts may be given as well, for names that are not Python
    identifiers. Nothing is inferred or defaulted here: declare what the
    kernel does (family, window, softmax_scale, profile or the *_dtype
    keys, layout; docs/interop.md), and attnvet check refuses a bundle
    that leaves a deciding key out.

    Tensors are written in the dtype they have: torch.bfloat16 as BF16,
    float16/32/64 and int32/64 as themselves. Lists are refused (their
    dtype would be a guess)."""
    ts, meta = dict(tensors or {}), dict(metadata or {})
    for k, v in kw.items():
        if _is_tensor(v):
            ts[k] = v
        elif isinstance(v, (list, tuple)):
            raise TypeError(f"dump: {k} is a {type(v).__name__}: pass a numpy array or torch tensor (its dtype is stored)")
        else:
            meta[k] = v
    if not ts:
        raise ValueError("dump: no tensors (want q, o and the keys and values: docs/interop.md)")
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    data = encode(ts, meta)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def load(path, as_torch=False):
    """(tensors, metadata) of a safetensors bundle; BF16 tensors come back
    as float32 numpy arrays (exact), or torch.bfloat16 with as_torch."""
    with open(path, "rb") as f:
        buf = f.read()
    meta, ts = decode(buf, as_torch=as_torch)
    return ts, meta
