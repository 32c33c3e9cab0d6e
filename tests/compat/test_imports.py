"""efl.compat.imports: the fixes applied on ``import efl`` work, and each is still needed."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import efl.compat

# Run in a fresh interpreter that does NOT import efl: the environment as detectron2 sees it.
_PROBE = r"""
import importlib.util, inspect, json
out = {}
import numpy as np
out["numpy_has_float"] = "float" in np.__dict__
from PIL import Image
out["pillow_has_linear"] = hasattr(Image, "LINEAR")
out["detectron2_has_C"] = importlib.util.find_spec("detectron2._C") is not None
try:
    import detectron2.layers  # noqa: F401
    out["detectron2_layers"] = "imports"
except ImportError as e:
    out["detectron2_layers"] = f"ImportError: {e}"
import os
# sources read as files: importing detectron2.data would already fail on Image.LINEAR
lvis_dir = importlib.util.find_spec("lvis").submodule_search_locations[0]
out["lvis_uses_np_float"] = "np.float)" in open(os.path.join(lvis_dir, "eval.py")).read()
d2_dir = importlib.util.find_spec("detectron2").submodule_search_locations[0]
transform_py = os.path.join(d2_dir, "data", "transforms", "transform.py")
out["detectron2_uses_image_linear"] = "Image.LINEAR" in open(transform_py).read()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def without_efl():
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120,
                            cwd=os.path.dirname(__file__))
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_numpy_aliases_are_still_needed_by_lvis_on_this_numpy(without_efl):
    assert without_efl["lvis_uses_np_float"], "lvis no longer uses np.float: drop the NumPy aliases"
    assert not without_efl["numpy_has_float"], "this NumPy still has np.float: the alias fix is unused"


def test_numpy_aliases_work_after_import_efl():
    assert "numpy-aliases" in efl.compat.applied_fixes()
    assert np.float is float and np.int is int
    # what lvis 0.5.3's LVISEval.accumulate does
    assert np.cumsum(np.array([[True, False, True]]), axis=1).astype(dtype=np.float).tolist() == [[1.0, 1.0, 2.0]]


def test_pillow_linear_is_still_needed_by_detectron2_on_this_pillow(without_efl):
    assert without_efl["detectron2_uses_image_linear"], "detectron2 no longer uses Image.LINEAR: drop the fix"
    assert not without_efl["pillow_has_linear"], "this Pillow still has Image.LINEAR: the fix is unused"


def test_pillow_linear_is_bilinear_after_import_efl():
    from detectron2.data.transforms.transform import ExtentTransform

    assert "pillow-LINEAR" in efl.compat.applied_fixes()
    assert Image.LINEAR == Image.BILINEAR
    assert ExtentTransform((0, 0, 4, 4), (2, 2)).interp == Image.BILINEAR


def test_detectron2_c_stub_is_still_needed_without_compiled_ops(without_efl):
    assert not without_efl["detectron2_has_C"], "this detectron2 has its C++ ops: the stub is unused"
    assert without_efl["detectron2_layers"].startswith("ImportError"), without_efl["detectron2_layers"]


def test_detectron2_c_stub_lets_detectron2_import_and_fails_clearly_when_called():
    from detectron2 import _C
    from detectron2.layers import ROIAlignRotated  # noqa: F401  (imports _C at module level)

    assert "detectron2-_C-stub" in efl.compat.applied_fixes()
    with pytest.raises(RuntimeError, match="built without its C\\+\\+/CUDA ops"):
        _C.deform_conv_forward()
    assert _C.has_cuda() is False


def test_apply_is_idempotent():
    before = efl.compat.applied_fixes()
    efl.compat.apply()
    assert efl.compat.applied_fixes() == before


_JIT_PROBE = r"""
import warnings
warnings.simplefilter("default")
{prelude}
import fvcore.nn  # noqa: F401  (scripts functions on import, as detectron2 0.6 does)
"""


def _jit_warnings(prelude):
    result = subprocess.run([sys.executable, "-c", _JIT_PROBE.format(prelude=prelude)], capture_output=True,
                            text=True, timeout=120, cwd=os.path.dirname(__file__))
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr.count("`torch.jit.script` is deprecated")


def test_jit_script_warning_is_still_printed_by_fvcore_without_efl():
    assert _jit_warnings("") > 0, "torch no longer warns about jit.script on import: drop the filter"


def test_import_efl_quiets_the_jit_script_warning():
    assert "torch-jit-script-warning" in efl.compat.applied_fixes()
    assert _jit_warnings("import efl") == 0


_PKG_RESOURCES_PROBE = """
import warnings
warnings.simplefilter("default")
{prelude}
import detectron2.model_zoo  # noqa: F401  (imports pkg_resources)
"""


def _pkg_resources_warnings(prelude):
    result = subprocess.run([sys.executable, "-c", _PKG_RESOURCES_PROBE.format(prelude=prelude)],
                            capture_output=True, text=True, timeout=120, cwd=os.path.dirname(__file__))
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr.count("pkg_resources is deprecated")


def test_pkg_resources_warning_is_still_printed_where_detectron2s_model_zoo_imports_it():
    import importlib.util

    model_zoo = importlib.util.find_spec("detectron2.model_zoo.model_zoo").origin
    with open(model_zoo) as f:
        assert "import pkg_resources" in f.read(), "detectron2 no longer imports pkg_resources: drop the filter"
    result = subprocess.run([sys.executable, "-W", "default", "-c", "import pkg_resources"], capture_output=True,
                            text=True, timeout=120, cwd=os.path.dirname(__file__))
    assert "pkg_resources is deprecated" in result.stderr, "pkg_resources no longer warns: drop the filter"


def test_import_efl_quiets_the_pkg_resources_warning():
    assert "pkg-resources-warning" in efl.compat.applied_fixes()
    assert _pkg_resources_warnings("import efl") == 0
