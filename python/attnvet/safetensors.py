"""A minimal safetensors reader and writer (numpy; torch tensors accepted).

The format: 8 bytes little-endian header length n, n bytes of JSON header
({name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
{str: str}}), then the tensors' bytes, row-major, little-endian, offsets
relative to the end of the header. The header is padded with spaces to a
multiple of 8, as the safetensors library writes it.

BF16 has no numpy dtype: a BF16 tensor is read as float32 (exactly, every
BF16 value is a float32) and written from a torch.bfloat16 tensor, or from
a float32 array wrapped in `bf16(...)`. FP8 tensors (F8_E4M3, OCP e4m3fn:
no infinities, S.1111.111 NaN, largest 448; F8_E5M2, IEEE-like) are read
the same way, as the exact float32 values of their codes (`dtypes` tells
what was stored; the raw codes are `f8_codes`); they are not written here.
"""

import json
import math
import struct

import numpy as np

# safetensors dtype -> numpy dtype of its storage (BF16: the raw 16 bits).
_STORAGE = {
    "BF16": np.dtype("<u2"), "F16": np.dtype("<f2"), "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"), "I32": np.dtype("<i4"), "I64": np.dtype("<i8"),
    "I16": np.dtype("<i2"), "I8": np.dtype("i1"), "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
# FP8 storage: the byte codes, read through a 256-entry table of values.
_FP8 = ("F8_E4M3", "F8_E5M2")
_STORAGE.update({dt: np.dtype("u1") for dt in _FP8})


def _fp8_table(exp_bits, bias, ieee):
    """float32 value of every code of a 1-exp_bits-mantissa FP8 format:
    ieee: the top exponent is Inf (mantissa 0) or NaN (e5m2); else only
    the all-ones code of each sign is NaN (e4m3fn)."""
    man_bits = 7 - exp_bits
    t = np.empty(256, np.float32)
    for c in range(256):
        sign = -1.0 if c & 0x80 else 1.0
        e, m = (c >> man_bits) & ((1 << exp_bits) - 1), c & ((1 << man_bits) - 1)
        top = e == (1 << exp_bits) - 1
        if ieee and top:
            t[c] = sign * math.inf if m == 0 else math.nan
        elif not ieee and top and m == (1 << man_bits) - 1:
            t[c] = math.nan
        elif e == 0:
            t[c] = sign * math.ldexp(m, 1 - bias - man_bits)
        else:
            t[c] = sign * math.ldexp((1 << man_bits) + m, e - bias - man_bits)
    return t


_FP8_VALUES = {"F8_E4M3": _fp8_table(4, 7, False), "F8_E5M2": _fp8_table(5, 15, True)}


def f8_codes(buf, name):
    """The raw uint8 codes of FP8 tensor `name` in safetensors bytes."""
    (n,) = struct.unpack_from("<Q", buf, 0)
    info = json.loads(bytes(buf[8:8 + n]))[name]
    if info["dtype"] not in _FP8:
        raise ValueError(f"tensor {name}: dtype {info['dtype']} is not FP8")
    b, e = info["data_offsets"]
    return np.frombuffer(memoryview(buf)[8 + n + b:8 + n + e], dtype="u1").copy().reshape(info["shape"])


_FROM_NUMPY = {
    np.dtype("float16"): "F16", np.dtype("float32"): "F32", np.dtype("float64"): "F64",
    np.dtype("int32"): "I32", np.dtype("int64"): "I64", np.dtype("int16"): "I16",
    np.dtype("int8"): "I8", np.dtype("uint8"): "U8", np.dtype("bool"): "BOOL",
}


class BF16:
    """A float array to be stored as BF16. Made by `bf16(x)`."""

    __slots__ = ("bits", "shape")

    def __init__(self, bits, shape):
        self.bits, self.shape = bits, tuple(shape)

    def numpy(self):
        """The values as float32 (exact)."""
        return bf16_to_f32(self.bits).reshape(self.shape)


def round_bf16(x):
    """x rounded to the nearest BF16 value (ties to even), as float32.

    NaN stays NaN (quiet); values beyond the largest BF16 round to ±inf as
    the IEEE cast does."""
    return bf16_to_f32(_rne_bits(np.asarray(x, dtype=np.float32)))


def _rne_bits(f):
    u = np.ascontiguousarray(f, dtype="<f4").view("<u4").astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    bits = r.astype(np.uint16)
    nan = np.isnan(f)
    if nan.any():
        bits = np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), bits)
    return bits


def bf16_to_f32(bits):
    return (np.asarray(bits, dtype="<u2").astype("<u4") << 16).view("<f4")


def bf16(x, round=False):
    """Marks x (a float array or tensor) to be written as BF16.

    By default every value must already be a BF16 value (what a BF16
    kernel saw): otherwise ValueError names the first element that is not,
    since a bundle must hold the values the kernel computed with. With
    round=True the values are rounded to nearest, ties to even (use it to
    make BF16 inputs, not to store a kernel's output)."""
    if isinstance(x, BF16):
        return x
    if _is_torch(x):
        import torch
        if x.dtype == torch.bfloat16:
            return BF16(x.detach().cpu().contiguous().view(torch.int16).numpy().view("<u2").copy(), x.shape)
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype.kind != "f":
        raise TypeError(f"bf16: want a float array, got dtype {a.dtype}")
    f = a.astype(np.float32)
    if a.dtype.itemsize > 4:
        bad = (f.astype(a.dtype) != a) & ~np.isnan(a)
        if bad.any() and not round:
            i = np.unravel_index(int(np.argmax(bad)), a.shape)
            raise ValueError(f"bf16: value {a[i]!r} at {list(map(int, i))} is not a BF16 value (pass round=True to round it)")
    bits = _rne_bits(f)
    if not round:
        back = bf16_to_f32(bits).reshape(f.shape)
        bad = (back != f) & ~np.isnan(f)
        if bad.any():
            i = np.unravel_index(int(np.argmax(bad)), f.shape)
            raise ValueError(f"bf16: value {float(f[i])!r} at {list(map(int, i))} is not a BF16 value (pass round=True to round it)")
    return BF16(bits.reshape(-1), f.shape)


def _is_torch(x):
    return type(x).__module__.split(".")[0] == "torch"


def _encode(name, x):
    """(dtype name, shape, bytes) of one tensor."""
    if isinstance(x, BF16):
        return "BF16", list(x.shape), np.ascontiguousarray(x.bits, dtype="<u2").tobytes()
    if _is_torch(x):
        import torch
        t = x.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            return "BF16", list(t.shape), t.view(torch.int16).numpy().astype("<i2").tobytes()
        x = t.numpy()
    a = np.asarray(x)
    if a.dtype not in _FROM_NUMPY:
        raise TypeError(f"tensor {name}: dtype {a.dtype} has no safetensors dtype attnvet reads "
                        "(want float16/32/64, int32/64, a torch.bfloat16 tensor or bf16(x))")
    dt = _FROM_NUMPY[a.dtype]
    return dt, list(a.shape), np.ascontiguousarray(a, dtype=_STORAGE[dt]).tobytes()


def _meta_str(key, v):
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f) or math.isinf(f):
            raise ValueError(f"metadata {key}: {f} is not a finite number")
        return repr(f)  # round-trips exactly
    if _is_torch(v) and type(v).__name__ == "dtype":
        return str(v)  # torch.bfloat16: a spelling attnvet reads
    raise TypeError(f"metadata {key}: want a str, int, float or bool, got {type(v).__name__}")


def encode(tensors, metadata=None):
    """The safetensors bytes of {name: array} with metadata {key: value};
    values become strings (floats by repr, which round-trips exactly;
    bools as true/false)."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): _meta_str(k, v) for k, v in metadata.items()}
    for name, x in tensors.items():
        dt, shape, raw = _encode(name, x)
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def decode(buf, as_torch=False):
    """(metadata, {name: array}) of safetensors bytes. BF16 becomes
    float32 numpy arrays, or torch.bfloat16 tensors with as_torch; FP8
    becomes the float32 values of its codes (with as_torch, float32
    tensors: exact, and the same on every torch version)."""
    if len(buf) < 8:
        raise ValueError("safetensors: shorter than its 8-byte header length")
    (n,) = struct.unpack_from("<Q", buf, 0)
    if 8 + n > len(buf):
        raise ValueError(f"safetensors: header length {n} runs past the end ({len(buf)} bytes)")
    header = json.loads(bytes(buf[8:8 + n]))
    meta = header.pop("__metadata__", None) or {}
    data = memoryview(buf)[8 + n:]
    out = {}
    for name, info in header.items():
        dt, shape = info["dtype"], info["shape"]
        b, e = info["data_offsets"]
        if dt not in _STORAGE:
            raise ValueError(f"tensor {name}: dtype {dt} is not read here")
        if not 0 <= b <= e <= len(data):
            raise ValueError(f"tensor {name}: data_offsets [{b}, {e}] outside the data ({len(data)} bytes)")
        a = np.frombuffer(data[b:e], dtype=_STORAGE[dt]).copy()
        if a.size != math.prod(shape):
            raise ValueError(f"tensor {name}: {a.size} values for shape {shape}")
        a = a.reshape(shape)
        if dt in _FP8:
            a = _FP8_VALUES[dt][a]
        if as_torch:
            import torch
            if dt == "BF16":
                out[name] = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
            else:
                out[name] = torch.from_numpy(a)
        else:
            out[name] = bf16_to_f32(a).reshape(shape) if dt == "BF16" else a
    return meta, out


def dtypes(buf):
    """{name: safetensors dtype} of safetensors bytes (what was stored)."""
    (n,) = struct.unpack_from("<Q", buf, 0)
    header = json.loads(bytes(buf[8:8 + n]))
    return {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}
