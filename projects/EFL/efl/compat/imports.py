"""The fixes that must precede any import of detectron2: Detectron2 0.6 (the PyPI
``pb1-detectron2`` build) and lvis 0.5.3 on today's NumPy and Pillow.

Every fix checks that it is needed before it changes anything, so the same code runs unchanged
with an upstream Detectron2 build (which has its C++ ops) and with old NumPy/Pillow.
"""
import importlib.util
import os
import re
import sys
import types
import warnings

__all__ = ["apply", "applied_fixes"]

_APPLIED = []


def applied_fixes():
    """Names of the fixes this process needed (for logs and bug reports)."""
    return list(_APPLIED)


def _numpy_aliases():
    # For lvis 0.5.3 and detectron2 0.6 on NumPy >= 1.24, which removed the deprecated aliases:
    # lvis 0.5.3 uses np.float in LVISEval.accumulate (the LVIS evaluator crashes) and detectron2
    # 0.6 uses np.int in its class histogram (silently skipped).
    import numpy as np

    aliases = {"float": float, "int": int, "bool": bool, "object": object, "str": str, "long": int}
    missing = {name: alias for name, alias in aliases.items() if name not in np.__dict__}
    if missing:
        for name, alias in missing.items():
            setattr(np, name, alias)
        _APPLIED.append("numpy-aliases")


def _pillow_linear():
    # For detectron2 0.6 on Pillow >= 10, which removed Image.LINEAR, a default argument in
    # detectron2 0.6's transform.py.
    from PIL import Image

    if not hasattr(Image, "LINEAR"):
        Image.LINEAR = Image.BILINEAR
        _APPLIED.append("pillow-LINEAR")


def _missing_c_ops_error(name):
    def unavailable(*args, **kwargs):
        raise RuntimeError(
            f"detectron2._C.{name} is not available: this detectron2 was built without its C++/CUDA "
            "ops (the PyPI pb1-detectron2 build). The EFL detectors do not need them; for models that "
            "do (deformable conv, rotated boxes), install detectron2 from source."
        )

    return unavailable


def _stub_getattr(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _missing_c_ops_error(name)


def _detectron2_c_stub():
    # For detectron2 0.6 built without its C++ ops (pb1-detectron2). It imports its compiled ops
    # at module level in layers/deform_conv.py, layers/rotated_boxes.py, layers/roi_align_rotated.py
    # and evaluation/fast_eval_api.py: a stub lets those modules import and fails clearly if called.
    if "detectron2._C" in sys.modules:
        return
    try:
        if importlib.util.find_spec("detectron2") is None:
            return
        if importlib.util.find_spec("detectron2._C") is not None:
            return
    except (ImportError, ValueError):
        return
    stub = types.ModuleType("detectron2._C")
    stub.__doc__ = "Stub installed by efl.compat.imports: this detectron2 build has no compiled ops."
    # detectron2.utils.collect_env queries these.
    stub.get_compiler_version = lambda: "not built (pure-Python detectron2)"
    stub.get_cuda_version = lambda: "not built (pure-Python detectron2)"
    stub.has_cuda = lambda: False
    stub.__getattr__ = _stub_getattr
    sys.modules["detectron2._C"] = stub
    import detectron2

    detectron2._C = stub
    _APPLIED.append("detectron2-_C-stub")


def _quiet_warning_its_source_raises(source, text, category, fix):
    """Ignore the warning whose message starts with ``text`` when the file ``source`` (the code that
    raises it) contains that text, i.e. when the installed version does warn. The file is read, not
    imported: importing torch or setuptools here would slow down ``import efl`` for nothing."""
    try:
        with open(source, encoding="utf-8") as f:
            raised = text in f.read()
    except (OSError, TypeError):  # no such file (None for a module without a source)
        return
    if raised and fix not in _APPLIED:
        warnings.filterwarnings("ignore", message=re.escape(text), category=category)
        _APPLIED.append(fix)


def _quiet_jit_script_deprecation():
    # For fvcore and detectron2 0.6 on torch >= 2.10, which deprecates torch.jit.script: both
    # script functions when imported, so every tool (and every worker process) printed the same
    # FutureWarning about code its user cannot change.
    spec = importlib.util.find_spec("torch")
    if spec is not None and spec.submodule_search_locations:
        _quiet_warning_its_source_raises(
            os.path.join(spec.submodule_search_locations[0], "jit", "_script.py"),
            "`torch.jit.script` is deprecated", FutureWarning, "torch-jit-script-warning")


def _quiet_pkg_resources_deprecation():
    # For detectron2 0.6's model_zoo, which imports pkg_resources (deprecated by setuptools >= 67,
    # to be removed): every tool that reads a model-zoo config (benchmark_model.py) printed the
    # warning about code its user cannot change.
    spec = importlib.util.find_spec("pkg_resources")
    if spec is not None:
        _quiet_warning_its_source_raises(spec.origin, "pkg_resources is deprecated as an API", UserWarning,
                                         "pkg-resources-warning")


def apply():
    """Apply every fix this environment needs. Idempotent."""
    _numpy_aliases()
    _pillow_linear()
    _detectron2_c_stub()
    _quiet_jit_script_deprecation()
    _quiet_pkg_resources_deprecation()
