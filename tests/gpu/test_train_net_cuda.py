"""tools/train_net.py as users run it on one GPU: `--num-gpus 1 train.device=cuda
train.amp.enabled=True` (configs/common/train.py), a few iterations of the tiny config with a
checkpoint and an evaluation at the end."""
import json
import math
from pathlib import Path

import pytest

from ..engine.test_train_net import STAT_BUFFERS, load_checkpoint, metrics_records, run_train_net, tiny_data  # noqa: F401
from .cuda import requires_cuda

pytestmark = [requires_cuda, pytest.mark.cuda]


def test_train_net_on_one_gpu_with_amp_trains_checkpoints_and_evaluates(tiny_data, tmp_path):  # noqa: F811
    output_dir = tmp_path / "cuda_amp"
    run_train_net(tiny_data, output_dir, "--num-gpus", "1", "train.device=cuda", "train.amp.enabled=True",
                  "train.max_iter=4", "train.eval_period=4", timeout=300)
    log = (output_dir / "log.txt").read_text()
    assert "running on CPU" not in log and "fp32 with SimpleTrainer" not in log

    records = metrics_records(output_dir)
    assert [r["iteration"] for r in records] == [0, 1, 2, 3]
    assert all(math.isfinite(r["total_loss"]) for r in records)

    checkpoint = load_checkpoint(output_dir / "model_final.pth")
    # AMPTrainer.state_dict carries its GradScaler: the run trained with mixed precision
    assert checkpoint["trainer"]["grad_scaler"]["scale"] > 0
    pos_grad, neg_grad, pos_neg = (checkpoint["model"][name] for name in STAT_BUFFERS)
    assert pos_grad.sum() > 0 and neg_grad.sum() > 0
    assert ((pos_neg >= 0) & (pos_neg <= 1)).all() and (pos_neg < 1).any()

    results = json.loads((Path(output_dir) / "final_results.json").read_text())
    assert {"AP", "APr", "APc", "APf"} <= set(results["bbox"]) and results["world_size"] == 1
