import json
import struct

import numpy as np
import pytest

import attnvet
from attnvet.safetensors import decode, encode


def header(buf):
    (n,) = struct.unpack_from("<Q", buf)
    return n, json.loads(buf[8:8 + n])


def test_roundtrip_numpy_dtypes(tmp_path):
    rng = np.random.default_rng(1)
    ts = {
        "a16": rng.standard_normal((2, 3)).astype(np.float16),
        "a32": rng.standard_normal((4,)).astype(np.float32),
        "a64": rng.standard_normal((1, 2, 3)),
        "i32": np.arange(6, dtype=np.int32).reshape(2, 3),
        "i64": np.array([-1, 2**40], dtype=np.int64),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    p = attnvet.dump(str(tmp_path / "x.safetensors"), tensors=ts, family="window", window=8,
                     softmax_scale=0.1, l_from_rounded_p=True)
    got, meta = attnvet.load(p)
    assert meta == {"family": "window", "window": "8", "softmax_scale": "0.1", "l_from_rounded_p": "true"}
    for k, a in ts.items():
        assert got[k].dtype == a.dtype and got[k].shape == a.shape
        np.testing.assert_array_equal(got[k], a)
    buf = open(p, "rb").read()
    n, h = header(buf)
    assert n % 8 == 0, "header padded to 8 bytes as the safetensors library writes it"
    assert {k: v["dtype"] for k, v in h.items() if k != "__metadata__"} == {
        "a16": "F16", "a32": "F32", "a64": "F64", "i32": "I32", "i64": "I64", "empty": "F32"}
    assert 8 + n + h["i64"]["data_offsets"][1] <= len(buf)


def test_softmax_scale_repr_roundtrips():
    s = 1 / np.sqrt(96.0)
    meta, _ = decode(encode({"q": np.zeros(1, np.float32)}, {"softmax_scale": s}))
    assert float(meta["softmax_scale"]) == s


def test_round_bf16_ties_to_even():
    one = 1.0
    ulp = 2.0 ** -7  # BF16 ulp of 1
    x = np.array([one + ulp / 2, one + 3 * ulp / 2, one + ulp / 2 + 2**-20, -(one + ulp / 2),
                  3.4e38, np.inf, -0.0, 2.0**-133, np.nan], dtype=np.float32)
    r = attnvet.round_bf16(x)
    assert r[0] == one              # tie: to the even 1.0
    assert r[1] == one + 2 * ulp    # tie: to the even 1 + 2 ulp
    assert r[2] == one + ulp        # above the tie: up
    assert r[3] == -one
    assert np.isinf(r[4]) and r[5] == np.inf  # beyond the largest BF16: inf, as a cast does
    assert r[6] == 0 and np.signbit(r[6])
    assert r[7] == 2.0**-133        # a BF16 subnormal is exact
    assert np.isnan(r[8])


def test_bf16_refuses_inexact_values():
    x = np.array([[1.0, 1.0 + 2**-12]], dtype=np.float32)
    with pytest.raises(ValueError, match=r"1.000244140625 at \[0, 1\] is not a BF16 value"):
        attnvet.bf16(x)
    b = attnvet.bf16(x, round=True)
    np.testing.assert_array_equal(b.numpy(), [[1.0, 1.0]])


def test_bf16_written_as_bf16_bits(tmp_path):
    x = attnvet.round_bf16(np.random.default_rng(2).standard_normal((3, 2, 4)))
    p = attnvet.dump(str(tmp_path / "b.safetensors"), q=attnvet.bf16(x), in_dtype="bf16")
    buf = open(p, "rb").read()
    _, h = header(buf)
    assert h["q"]["dtype"] == "BF16" and h["q"]["data_offsets"] == [0, 2 * x.size]
    got, _ = attnvet.load(p)
    np.testing.assert_array_equal(got["q"], x)


def test_dump_refuses_guesses(tmp_path):
    with pytest.raises(TypeError, match="q is a list"):
        attnvet.dump(str(tmp_path / "l.safetensors"), q=[[1.0]])
    with pytest.raises(TypeError, match="dtype complex128"):
        attnvet.dump(str(tmp_path / "c.safetensors"), q=np.zeros(2, complex))
    with pytest.raises(ValueError, match="no tensors"):
        attnvet.dump(str(tmp_path / "n.safetensors"), window=3)
    with pytest.raises(ValueError, match="not a finite number"):
        attnvet.dump(str(tmp_path / "f.safetensors"), q=np.zeros(1, np.float32), softmax_scale=float("nan"))


def test_torch_bf16(tmp_path):
    torch = pytest.importorskip("torch")
    t = torch.randn(5, 3).to(torch.bfloat16)
    p = attnvet.dump(str(tmp_path / "t.safetensors"), q=t, o=t.float(), in_dtype=torch.bfloat16)
    buf = open(p, "rb").read()
    _, h = header(buf)
    assert h["q"]["dtype"] == "BF16" and h["o"]["dtype"] == "F32"
    assert h["__metadata__"]["in_dtype"] == "torch.bfloat16"
    raw = buf[8 + struct.unpack_from("<Q", buf)[0]:][:30]
    assert raw == t.view(torch.int16).numpy().astype("<i2").tobytes()
    got, _ = attnvet.load(p, as_torch=True)
    assert got["q"].dtype == torch.bfloat16 and torch.equal(got["q"], t)
    np.testing.assert_array_equal(attnvet.bf16(t).numpy(), t.float().numpy())


def fp8_bundle(dtype, codes):
    """Safetensors bytes with one FP8 tensor of raw byte codes (encode does
    not write FP8; attnvet does)."""
    raw = np.asarray(codes, np.uint8).tobytes()
    h = json.dumps({"x": {"dtype": dtype, "shape": [len(raw)], "data_offsets": [0, len(raw)]}}).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + raw


def test_fp8_codes_read_as_their_values():
    from attnvet.safetensors import dtypes, f8_codes
    codes = np.arange(256, dtype=np.uint8)
    # e5m2 is the top byte of a binary16: numpy's float16 decodes every code.
    buf = fp8_bundle("F8_E5M2", codes)
    _, ts = decode(buf)
    want = (codes.astype(np.uint16) << 8).view(np.float16).astype(np.float32)
    assert ts["x"].dtype == np.float32
    np.testing.assert_array_equal(ts["x"], want)
    assert dtypes(buf) == {"x": "F8_E5M2"}
    np.testing.assert_array_equal(f8_codes(buf, "x"), codes)
    # e4m3fn (OCP): bias 7, no infinities, S.1111.111 the only NaNs.
    _, ts = decode(fp8_bundle("F8_E4M3", codes))
    x = ts["x"]
    nan = np.isnan(x)
    assert list(np.flatnonzero(nan)) == [0x7F, 0xFF]
    assert not np.isinf(x).any()
    assert x[0x7E] == 448 and x[0x01] == 2.0 ** -9 and x[0x08] == 2.0 ** -6 and x[0x38] == 1
    pos = x[:0x7F]
    assert (np.diff(pos) > 0).all(), "codes 0..0x7e increase"
    np.testing.assert_array_equal(x[0x80:0xFF], -pos)  # the sign bit; -0 at 0x80
    assert np.signbit(x[0x80])
    # Every e4m3 value is a multiple of its quantum: 2^-9 below 2^-6, 2^(e-10) above.
    for c in range(1, 0x7F):
        e = c >> 3
        q = 2.0 ** (max(e, 1) - 10)
        assert float(pos[c]) / q == int(float(pos[c]) / q) and 8 * q <= float(pos[c]) * (e > 0) + 8 * q * (e == 0) < 16 * q


def test_fp8_as_torch_is_float32():
    torch = pytest.importorskip("torch")
    _, ts = decode(fp8_bundle("F8_E4M3", [0x38, 0x7E, 0xB8]), as_torch=True)
    assert ts["x"].dtype == torch.float32 and ts["x"].tolist() == [1.0, 448.0, -1.0]
