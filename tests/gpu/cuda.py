"""Marks of the CUDA tests (issue 18): they run where a CUDA device is present and skip, saying so, where it
is not. `make gpu-check` (tools/gpu_check.py) runs them with the benchmarks and writes one report."""
import pytest
import torch

NO_CUDA_REASON = "no CUDA device: torch.cuda.is_available() is False (run `make gpu-check` on a GPU machine)"

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA_REASON)


def devices():
    """``cpu`` and ``cuda`` as parameters: the CPU run of a test body checks the same property on
    any machine; the CUDA run skips without a device."""
    return ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, requires_cuda])]
