"""Build and install Detectron2 0.6 as a pure-Python wheel from the PyPI sdist ``pb1-detectron2``.

Detectron2 is not published on PyPI under its own name. ``pb1-detectron2==0.6`` is byte-identical
to upstream tag v0.6 except for its name and the missing C++ sources, so its setup.py needs three
edits before it builds (see the project README, "Installing Detectron2"):

1. no C++ extension (``detectron2/layers/csrc`` is absent from the sdist);
2. ship the model-zoo configs (its glob looks at a ``./configs`` the sdist does not have);
3. do not install a top-level ``tools`` package (it would shadow this project's ``tools/``).

Run with the interpreter of the target environment, after torch is installed there.
"""
import argparse
import glob
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile

SDIST = "pb1-detectron2==0.6"


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def patch_setup_py(text):
    """Apply the three edits; fail loudly if the sdist is not the one these edits were written for."""
    edits = [
        (r"ext_modules=get_extensions\(\),", "ext_modules=[],"),
        (
            r'package_data=\{"detectron2\.model_zoo": get_model_zoo_configs\(\)\},',
            'package_data={"detectron2.model_zoo": ["configs/**/*.yaml", "configs/**/*.py"]},',
        ),
        (r'packages=find_packages\(exclude=\("configs", "tests\*"\)\)',
         'packages=find_packages(exclude=("configs", "tests*", "tools", "tools.*"))'),
    ]
    for pattern, replacement in edits:
        text, count = re.subn(pattern, replacement, text)
        if count != 1:
            raise RuntimeError(f"detectron2 setup.py: expected one match of {pattern!r}, found {count}")
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sha256", required=True, help="expected sha256 of the sdist")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="efl-d2-") as work:
        subprocess.check_call(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             "--no-build-isolation", "-d", work, SDIST]
        )
        (sdist,) = glob.glob(os.path.join(work, "*.tar.gz"))
        actual = sha256_of(sdist)
        if actual != args.sha256:
            raise SystemExit(f"{sdist}: sha256 {actual} differs from the expected {args.sha256}")
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        (tree,) = glob.glob(os.path.join(work, "pb1-detectron2-*/"))
        # The model-zoo configs live inside the package in this sdist: keep them with the package.
        setup_py = os.path.join(tree, "setup.py")
        with open(setup_py) as f:
            text = patch_setup_py(f.read())
        with open(setup_py, "w") as f:
            f.write(text)
        subprocess.check_call(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", tree]
        )


if __name__ == "__main__":
    main()
