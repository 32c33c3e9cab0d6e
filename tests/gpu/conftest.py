"""CUDA tests (issue 18): the marks are in tests/gpu/cuda.py, the detectors in tiny_detectors.py."""
import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA device; skipped, with the reason, without one")


@pytest.fixture(scope="session")
def tiny_cfg(tmp_path_factory):
    """tests/engine/tiny_config.py over a tiny LVIS-format set written for this session."""
    from .tiny_detectors import tiny_lvis_config

    return tiny_lvis_config(tmp_path_factory.mktemp("tiny_lvis"))
