"""pytest plugin: the `attnvet_check` fixture.

    def test_my_kernel(attnvet_check):
        o = my_kernel(q, k, v, sink, window=8)
        attnvet_check(q=q, k=k, v=v, o=o, attn_sink=sink,
                      family="window", window=8, softmax_scale=0.125, profile="bf16")

dumps the tensors as a bundle (under pytest's tmp_path, or under DIR with
--attnvet-dump DIR, named after the test), runs `attnvet check` on it and
fails the test with attnvet's message and the command that replays the
verdict. attnvet_check("file.safetensors", **flags) checks an existing
bundle. It returns the CheckResult.

Installed (`pip install ./python`), the plugin loads itself; from a
checkout, add `pytest_plugins = ["attnvet.pytest_plugin"]` to conftest.py
with python/ on sys.path.
"""

import os
import re

import pytest

from . import check, dump


def pytest_addoption(parser):
    g = parser.getgroup("attnvet")
    g.addoption("--attnvet-dump", metavar="DIR", default=None,
                help="keep the bundles attnvet_check writes in DIR (default: the test's tmp_path)")
    g.addoption("--attnvet-criterion", metavar="NAME", default=None,
                help="gating criteria of attnvet check (default bound)")


@pytest.fixture
def attnvet_check(request, tmp_path):
    keep = request.config.getoption("--attnvet-dump")
    criterion = request.config.getoption("--attnvet-criterion")
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid).strip("_")
    calls = [0]

    def run(path=None, *, check_flags=None, **kw):
        if path is None:
            calls[0] += 1
            d = keep or str(tmp_path)
            path = os.path.join(d, f"{stem}-{calls[0]}.safetensors" if calls[0] > 1 else f"{stem}.safetensors")
            dump(path, **kw)
            flags = dict(check_flags or {})
        else:
            flags = dict(check_flags or {}, **kw)
        if criterion and "criterion" not in flags:
            flags["criterion"] = criterion
        r = check(path, **flags)
        if not r.passed:
            pytest.fail(r.message, pytrace=False)
        return r

    return run
