"""The losses as a library: `efl.losses` imports and computes without Detectron2 (README, "The
losses"), in a process where importing detectron2 (or fvcore) fails as in an environment that has
only torch and numpy."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A sys.meta_path finder that refuses detectron2 and fvcore, so find_spec and import both see an
# environment without them.
SCRIPT = r"""
import importlib.abc, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("detectron2", "fvcore"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
import torch
from efl.losses import EqualizedFocalLoss, EqualizedQualityFocalLoss

torch.manual_seed(0)
logits = torch.randn(50, 4, requires_grad=True)
labels = torch.randint(0, 5, (50,))
efl = EqualizedFocalLoss(num_classes=4, gamma_b=2.0, scale_factor=8.0, alpha=0.25).train()
loss = efl(logits, labels, 5.0)
loss.backward()
eqfl = EqualizedQualityFocalLoss(num_classes=4, gamma_b=2.0, scale_factor=4.0)
eqfl(logits, labels, torch.rand(50), 5.0).backward()
assert torch.isfinite(loss) and float(efl.neg_grad.sum()) > 0
assert not any(m.split(".")[0] in ("detectron2", "fvcore") for m in sys.modules), sorted(
    m for m in sys.modules if m.startswith(("detectron2", "fvcore")))
print("ok", float(loss))
"""


def test_losses_import_and_train_without_detectron2_or_fvcore():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")
