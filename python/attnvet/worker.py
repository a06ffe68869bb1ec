"""Serve a Python attention function as an attnvet exec worker.

    # my_worker.py
    import attnvet.worker

    def kernel(case):                  # case.q, case.k, case.v, case.attn_sink, case.window, …
        return my_attention(case.q, case.k, case.v, case.attn_sink, case.window, case.softmax_scale)

    attnvet.worker.serve(kernel, profile="bf16", families=("window",))

    attnvet fuzz --family window --target exec:'python3 my_worker.py' --time 60s

The protocol (docs/worker.md) is handled here: 8-byte little-endian
length-prefixed safetensors frames on stdin/stdout, the hello (answered
with the declared profile, and with protocol 2's declarations: families=,
quantized=, declare={...}), one reply per request, an exception in the
function answered as the worker's error for that case (and its traceback
logged to stderr). While serving, stdout is redirected to stderr, so a
stray print() in the kernel cannot corrupt a frame.
"""

import os
import struct
import sys
import traceback

from .safetensors import decode, dtypes, encode

PROTOCOL = "1"
PROTOCOL_V2 = "2"

# Keys of the bundle contract that declare a precision (docs/interop.md).
PROFILE_KEYS = ("profile", "in_dtype", "score_dtype", "p_dtype", "acc_dtype", "out_dtype",
                "out_rounding", "l_from_rounded_p", "exp_ulps", "exp_subnormals")


class Case:
    """One request: the inputs (numpy arrays, or torch tensors with
    arrays="torch"; BF16 inputs are float32 numpy arrays holding BF16 values,
    or torch.bfloat16 tensors) and the metadata (strings, in .meta).

    Attributes: family (the request's family: "sparse", "window",
    "dense", ...), seq (the request number), tensors (dict), meta (dict),
    dtypes ({name: the safetensors dtype attnvet stored it in}: "I8" codes
    of an INT8 cache, "F8_E4M3" of FP8 inputs, which arrive as their exact
    float32 values), split (protocol 2's split=N of a recheck, else None),
    outputs (the outputs asked for, e.g. ["o", "lse"]), and every tensor by
    its name (case.q, case.k_scale, case.cu_seqlens_q, ...; the sparse and
    window names q, k, v, ori_kv, ori_block_table, cmp_kv, cmp_block_table,
    cmp_sparse_indices, seqused_kv, attn_sink are None when absent: no
    sink, no compressed pool). window: W keys per query counting the
    query's own position (0 = full causal), or the sparse family's WIN;
    index_topk, tokens_per_batch; softmax_scale (a float)."""

    def __init__(self, meta, tensors, stored=None):
        self.meta, self.tensors = meta, tensors
        self.dtypes = stored or {}
        self.family = meta.get("family") or ("sparse" if "ori_kv" in tensors else "window")
        self.seq = int(meta.get("seq", "0"))

    def __getattr__(self, name):
        if name in ("meta", "tensors", "dtypes"):
            raise AttributeError(name)  # not set yet (copy, pickle): no recursion
        if name in self.tensors:
            return self.tensors[name]
        if name in ("q", "k", "v", "o", "ori_kv", "ori_block_table", "cmp_kv", "cmp_block_table",
                    "cmp_sparse_indices", "seqused_kv", "attn_sink"):
            return None
        raise AttributeError(name)

    @property
    def split(self):
        return self._int("split", None)

    @property
    def outputs(self):
        return (self.meta.get("outputs") or "o").split(",")

    def _int(self, key, default):
        v = self.meta.get(key)
        return default if v in (None, "") else int(v)

    @property
    def window(self):
        return self._int("window", 0)

    @property
    def index_topk(self):
        return self._int("index_topk", None)

    @property
    def tokens_per_batch(self):
        return self._int("tokens_per_batch", 1)

    @property
    def softmax_scale(self):
        s = self.meta.get("softmax_scale")
        if s:
            return float(s)
        return float(self.tensors["q"].shape[-1]) ** -0.5

    def __repr__(self):
        shapes = {k: tuple(v.shape) for k, v in self.tensors.items()}
        return f"<Case seq={self.seq} family={self.family} {shapes}>"


def declaration(profile=None, name=None, **keys):
    """The hello reply's metadata: profile a built-in name (`attnvet
    kernels` lists them) or a dict of the contract's precision keys;
    keyword precision keys override it."""
    meta = {}
    if isinstance(profile, dict):
        meta.update(profile)
    elif profile is not None:
        meta["profile"] = str(profile)
    meta.update({k: v for k, v in keys.items() if v is not None})
    for k in meta:
        if k not in PROFILE_KEYS:
            raise ValueError(f"serve: {k!r} is not a precision key (want {', '.join(PROFILE_KEYS)})")
    if name:
        meta["name"] = name
    return {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in meta.items()}


def _v2_value(key, v):
    """A protocol 2 declaration's value as the hello's string."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    if isinstance(v, (str, int)):
        return str(v)
    raise TypeError(f"serve: declaration {key}: want a str, int, bool or list, got {type(v).__name__}")


def declaration_v2(families=None, quantized=None, declare=None):
    """Protocol 2's hello keys (docs/worker.md "Declarations") beyond the
    profile: families and quantized (sequences of names), and declare, a
    dict of the others ("dtype.q": "F16", "max_head_dim": 128, "splits":
    (1, 2), "sink": False, ...). attnvet checks the values; an empty
    result means nothing to declare."""
    meta = {}
    for key, v in (declare or {}).items():
        if not isinstance(key, str) or key in PROFILE_KEYS or key in ("name", "protocol"):
            raise ValueError(f"serve: declare key {key!r}: not a protocol 2 declaration "
                             "(precision keys go in profile=, the name in name=)")
        meta[key] = _v2_value(key, v)
    if families:
        meta["families"] = _v2_value("families", tuple(families))
    if quantized:
        meta["quantized"] = _v2_value("quantized", tuple(quantized))
    return meta


def _read(f, n):
    b = bytearray()
    while len(b) < n:
        chunk = f.read(n - len(b))
        if not chunk:
            return None
        b += chunk
    return b


def serve(fn, profile=None, name=None, families=None, arrays="numpy", stdin=None, stdout=None,
          quantized=None, declare=None, **keys):
    """Answers attnvet's requests with fn(case) until stdin closes.

    fn takes a Case and returns o, [T, H, Dv]: a numpy array or torch tensor
    whose values the declared out_dtype holds exactly (a BF16 profile:
    a torch.bfloat16 tensor, or float32 holding BF16 values; round with
    attnvet.round_bf16 if your computation is wider: attnvet judges what
    you return and never rounds it). Raising an exception answers the
    case with an error (a `reported` worker failure in the campaign).

    profile:  a built-in profile name or a dict of precision keys (the
              keys may also be given as keyword arguments: acc_dtype="fp32").
              Declare what the kernel really does: it sets the tolerance.
    name:     the kernel's name in attnvet's reports.
    families: the families fn computes (default all). Declared in the
              hello (protocol 2), so attnvet sends no other case and fuzz
              without --family draws the one family declared alone; a
              case of another family is answered with an error saying so.
    quantized: the quantized dense inputs fn reads ("fp8", "int8_kv",
              "nvfp4_kv"; docs/worker.md "Quantized inputs"): their cases
              carry the codes and scales (case.dtypes tells which is
              which). Default none: attnvet does not send them.
    declare:  further protocol 2 declarations, {key: value}: "dtype.q":
              "F16", "max_head_dim": 128, "head_dims": (64, 128),
              "sink": False, "splits": (1, 2, 4), "max_inflight": 4, ...
    arrays:   "numpy" (default) or "torch": the type of case's tensors.

    With families, quantized or declare, serve answers protocol 2 when
    attnvet offers it (its hello's protocol_max); an attnvet that speaks
    protocol 1 only is answered with the profile alone, and a warning on
    stderr names what was not declared.
    """
    if arrays not in ("numpy", "torch"):
        raise ValueError(f"serve: arrays={arrays!r}: want 'numpy' or 'torch'")
    hello = declaration(profile, name, **keys)
    v2 = declaration_v2(families, quantized, declare)
    if stdout is None:
        # Frames go to the real stdout; everything else printed (Python or
        # C code in the kernel) goes to stderr.
        sys.stdout.flush()
        stdout = os.fdopen(os.dup(1), "wb", buffering=0)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    inp = stdin if stdin is not None else sys.stdin.buffer

    def reply(meta, tensors=None):
        b = encode(tensors or {}, meta)
        stdout.write(struct.pack("<Q", len(b)) + b)
        stdout.flush()

    try:
        _loop(fn, hello, v2, families, arrays, inp, stdout, reply)
    except BrokenPipeError:
        pass  # attnvet went away


def _offers_v2(meta):
    try:
        return int(meta.get("protocol_max", PROTOCOL)) >= int(PROTOCOL_V2)
    except ValueError:
        return False


def _loop(fn, hello, v2, families, arrays, inp, stdout, reply):
    while True:
        n = _read(inp, 8)
        if n is None:
            return  # attnvet closed our stdin: done
        payload = _read(inp, struct.unpack("<Q", n)[0])
        if payload is None:
            return
        try:
            meta, tensors = decode(payload, as_torch=(arrays == "torch"))
        except Exception as e:  # noqa: BLE001 - answer, do not die
            reply({"error": f"attnvet.worker: unreadable request: {e}"})
            continue
        if meta.get("request") == "hello":
            if meta.get("protocol", PROTOCOL) != PROTOCOL:
                print(f"attnvet.worker: attnvet speaks protocol {meta.get('protocol')}, this worker {PROTOCOL}",
                      file=sys.stderr, flush=True)
            if v2 and _offers_v2(meta):
                reply(dict(hello, protocol=PROTOCOL_V2, **v2))
                continue
            if v2:
                lost = sorted(set(v2) - {"families"})  # families is also kept here, by refusing
                if lost:
                    print(f"attnvet.worker: attnvet speaks protocol 1 only: {', '.join(lost)} not declared",
                          file=sys.stderr, flush=True)
            reply(hello)
            continue
        case = Case(meta, tensors, dtypes(payload))
        if families and case.family not in families:
            reply({"error": f"this worker computes the {', '.join(families)} family only, not {case.family}"})
            continue
        try:
            o = fn(case)
            if o is None:
                raise ValueError("the kernel returned None (want o, [T, H, Dv])")
            # a dict carries declared outputs beyond o: {"o": o, "lse": lse [T, H]}
            b = encode(o if isinstance(o, dict) else {"o": o}, {})
        except Exception as e:  # noqa: BLE001 - the kernel's error is the case's reply
            print(f"attnvet.worker: case {case.seq}: {type(e).__name__}: {e}", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
            reply({"error": f"{type(e).__name__}: {e}"})
            continue
        stdout.write(struct.pack("<Q", len(b)) + b)
        stdout.flush()
