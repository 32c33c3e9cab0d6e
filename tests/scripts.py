"""Loading the repository's scripts (tools/*.py, configs/common/*.py) in tests: they are files,
not modules of an installed package."""
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_script(relative_path):
    """The module of ``REPO/relative_path`` (e.g. "tools/train_net.py"), executed afresh; named
    after its file, without registering it in sys.modules."""
    path = REPO / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
