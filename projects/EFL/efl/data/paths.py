"""Where the project keeps the datasets it writes itself (the synthetic sets, the LVIS-format views
of custom datasets): ``$EFL_DATASETS``, else ``~/.cache/efl/datasets``."""
import os

__all__ = ["DATASETS_CACHE_ENV", "default_cache_root"]

DATASETS_CACHE_ENV = "EFL_DATASETS"


def default_cache_root():
    """`$EFL_DATASETS`, else `~/.cache/efl/datasets`."""
    default = os.path.join(os.path.expanduser("~"), ".cache", "efl", "datasets")
    return os.environ.get(DATASETS_CACHE_ENV) or default
