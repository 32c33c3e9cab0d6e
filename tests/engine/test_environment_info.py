"""The environment report that goes to log.txt prints nothing about CUDA on the console of a CPU
machine (collecting it imports torch.utils.cpp_extension, which warns at import without CUDA)."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = """
import efl  # noqa: F401
from {module} import {function}
report = {function}()
assert "PyTorch" in report
"""


def _stderr(module, function):
    result = subprocess.run([sys.executable, "-c", PROBE.format(module=module, function=function)],
                            capture_output=True, text=True, timeout=120, cwd=REPO,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr


def test_environment_report_is_quiet_where_detectron2s_warns():
    import torch

    if not torch.cuda.is_available():  # this project's machines: torch warns, so the quieting is needed
        assert "No CUDA runtime" in _stderr("detectron2.utils.collect_env", "collect_env_info")
    assert "No CUDA runtime" not in _stderr("efl.engine.defaults", "environment_info")
