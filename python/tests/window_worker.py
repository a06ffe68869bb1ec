"""A window-family worker in numpy float64, served by attnvet.worker.serve
(run by test_worker.py, and under `attnvet fuzz` there)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import attnvet.worker  # noqa: E402
from kernels import window_f64  # noqa: E402


def kernel(case):
    if os.environ.get("WORKER_FAIL_SEQ") == str(case.seq):
        raise RuntimeError("unsupported shape")
    if case.seq == 1:
        print("a stray print on stdout")  # must not corrupt the frames
    return window_f64(case.q, case.k, case.v, case.attn_sink, case.window, case.softmax_scale).astype("float32")


attnvet.worker.serve(kernel, profile="fp32", name="numpy-window-f64", families=("window",))
