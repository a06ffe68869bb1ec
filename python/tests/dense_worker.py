"""A dense-family worker served by attnvet.worker.serve with protocol 2's
declarations (families, quantized): the numpy kernel of
examples/numpy_dense_worker.py (float64, fp32 output, its own
dequantization of FP8, INT8 and NVFP4 inputs) behind the Python package's
frames and decoding. Run by test_worker.py under `attnvet fuzz`.

    --bad int8-scale   the example's wrong kernel: INT8 scales ignored
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples"))

import attnvet.worker  # noqa: E402
import numpy_dense_worker as example  # noqa: E402  (reads --bad from sys.argv)


def kernel(case):
    # The example takes (stored dtype, array) pairs and reads FP8 codes
    # through its own table; FP8 arrives here as the codes' exact values,
    # which it reads as F32 values: the same numbers.
    ts = {n: ("F32" if case.dtypes[n].startswith("F8") else case.dtypes[n], a) for n, a in case.tensors.items()}
    return dict(example.dense(case.meta, ts))


attnvet.worker.serve(kernel, profile="fp32", name="py-numpy-dense", families=("dense",),
                     quantized=("fp8", "int8_kv", "nvfp4_kv", "int4_kv"))
