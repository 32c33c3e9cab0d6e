# efl applies its detectron2 compatibility fixes on import; it must come before detectron2.
import efl  # noqa: F401

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def one_thread():
    """Torch on one thread for the test: on a shared 2-core machine two OpenMP threads per process
    spin against each other (a tiny YOLOX-IP training test took 140 s with 2 threads and 10 s with
    1 while other processes ran)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
