import os

HERE = os.path.dirname(os.path.abspath(__file__))

INNER = '''
import numpy as np
import sys
sys.path.insert(0, {here!r})
from kernels import window_f64


def case(seed=3, T=16, H=4, Hkv=2, D=8, Dv=8, W=5):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in ((T, H, D), (T, Hkv, D), (T, Hkv, Dv)))
    return q, k, v, W


def test_good(attnvet_check):
    q, k, v, W = case()
    o = window_f64(q, k, v, None, W, 0.3).astype(np.float32)
    r = attnvet_check(q=q, k=k, v=v, o=o, family="window", window=W, softmax_scale=0.3, profile="fp32")
    assert r.passed


def test_dropped_key(attnvet_check):
    q, k, v, W = case()
    o = window_f64(q, k, v, None, W - 1, 0.3).astype(np.float32)
    attnvet_check(q=q, k=k, v=v, o=o, family="window", window=W, softmax_scale=0.3, profile="fp32")
'''


def test_fixture_fails_with_message_and_replay(pytester, tmp_path, monkeypatch):
    # Loaded by -p alone, whether or not an installed copy's entry point would load it too.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTHONPATH", os.path.dirname(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    pytester.makepyfile(INNER.format(here=HERE))
    dump = tmp_path / "dumps"
    r = pytester.runpytest_subprocess("-p", "attnvet.pytest_plugin", "--attnvet-dump", str(dump))
    r.assert_outcomes(passed=1, failed=1)
    out = r.stdout.str()
    assert "FAIL" in out and "bound:" in out and "elements beyond the allowance" in out
    assert "replay: attnvet check " in out and "test_dropped_key.safetensors" in out
    assert sorted(os.listdir(dump)) == ["test_fixture_fails_with_message_and_replay.py_test_dropped_key.safetensors",
                                        "test_fixture_fails_with_message_and_replay.py_test_good.safetensors"]
