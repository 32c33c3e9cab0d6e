"""The one way `efl.data` registers a dataset with Detectron2, and the loader of a dataset whose
files lie under a root named by an environment variable (LVIS's `EFL_LVIS_ROOT`, Open Images'
`EFL_OID_ROOT`)."""
import os

from detectron2.data import DatasetCatalog, MetadataCatalog

__all__ = ["register_dataset", "root_from_env", "root_env_loader"]


def register_dataset(name, loader, **metadata):
    """
    Register `name` with `loader` (a callable returning its dataset dicts) and `metadata`,
    replacing an earlier registration of the same name: a config or a test may register a name
    again with other paths, which Detectron2's catalogs would refuse.
    """
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
    if name in MetadataCatalog.list():
        MetadataCatalog.remove(name)
    DatasetCatalog.register(name, loader)
    MetadataCatalog.get(name).set(**metadata)


def root_from_env(root, env_var):
    """``(root, base)``: `root`, or the environment variable's value when `root` is None (None
    when it is unset too), and the base of the registered paths (``$VAR`` while the root is unknown,
    so that the metadata shows where the files are expected)."""
    root = root if root is not None else os.environ.get(env_var)
    return root, (root if root is not None else f"${env_var}")


def root_env_loader(name, load, *, root, env_var, json_file, contents, register_call, json_hint=""):
    """
    A loader that calls `load()` once the root is known and its annotation file exists; otherwise
    loading is an error that says what to do.

    Args:
        name: the dataset name, first word of the messages.
        load: callable returning the dataset dicts.
        root: the root, None when neither given nor set in the environment.
        env_var: the environment variable naming the root.
        json_file: the annotation file the dataset reads.
        contents: what the root holds, for the message when it is unknown.
        register_call: the call that registers the datasets under another root.
        json_hint: appended to the message of a missing annotation file (how to write it).
    """
    def loader():
        if root is None:
            raise FileNotFoundError(
                f"{name}: set the environment variable {env_var} to the {contents}, or call {register_call}"
            )
        if not os.path.isfile(json_file):
            raise FileNotFoundError(f"{name}: {json_file} does not exist ({env_var}={root}){json_hint}")
        return load()

    return loader
