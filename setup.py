"""Install the `efl` package (sources in projects/EFL/efl).

Dependencies are pinned in requirements.txt and installed by scripts/install.sh, which also builds
Detectron2 (not on PyPI). `pip install -e .` alone installs only this package.
"""
import os
import re

from setuptools import find_packages, setup

PACKAGE_ROOT = os.path.join("projects", "EFL")


def read_version():
    with open(os.path.join(PACKAGE_ROOT, "efl", "__init__.py")) as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


setup(
    name="efl",
    version=read_version(),
    description="Equalized Focal Loss (EFL/EQFL) one-stage long-tailed detectors on Detectron2",
    package_dir={"": PACKAGE_ROOT},
    packages=find_packages(PACKAGE_ROOT),
    python_requires=">=3.9",
    # What `efl.losses` needs on its own (`pip install -e .`, then `from efl.losses import ...`).
    # The detectors' stack (detectron2, fvcore, lvis, ...) is installed by scripts/install.sh from
    # requirements.txt, because detectron2 must be built against the installed torch.
    install_requires=["torch", "numpy"],
)
