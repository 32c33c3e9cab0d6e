"""tools/train_net.py run as users run it (a subprocess), on the tiny LVIS-format set, on CPU."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from .tiny_lvis import write_tiny_lvis

REPO = Path(__file__).resolve().parents[2]
CONFIG = "tests/engine/tiny_config.py"
STAT_BUFFERS = ("cls_loss.pos_grad", "cls_loss.neg_grad", "cls_loss.pos_neg")


def train_net_command(output_dir, *args):
    return [sys.executable, "tools/train_net.py", "--config-file", CONFIG, *args,
            f"train.output_dir={output_dir}"]


def run_train_net(data_dir, output_dir, *args, timeout=240):
    proc = subprocess.run(train_net_command(output_dir, *args), cwd=REPO, env=_env(data_dir),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"train_net failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def _env(data_dir):
    return {**os.environ, "EFL_TEST_TINY_LVIS": str(data_dir), "OMP_NUM_THREADS": "1"}


def load_checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def metrics_records(output_dir):
    with open(Path(output_dir) / "metrics.json") as f:
        return [json.loads(line) for line in f if '"total_loss"' in line]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_lvis")
    write_tiny_lvis(str(root))
    return root


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """One uninterrupted 12-iteration run (checkpoints every 4, evaluation at the end)."""
    output_dir = tmp_path_factory.mktemp("trained")
    run_train_net(tiny_data, output_dir)
    return output_dir


def test_training_lowers_the_loss(trained):
    records = metrics_records(trained)
    assert [r["iteration"] for r in records] == list(range(12))
    # The first record holds iteration 0 alone; later ones are medians over the iterations so far.
    assert records[-1]["loss_cls"] < 0.97 * records[0]["loss_cls"]
    assert records[-1]["total_loss"] < records[0]["total_loss"]


def test_training_logs_progress_tensorboard_and_statistics_per_frequency_group(trained):
    records = metrics_records(trained)
    # tiny_lvis has two classes per LVIS frequency group: all three groups are summarized.
    for group in ("rare", "common", "frequent"):
        assert 0.0 <= records[-1][f"efl/g_{group}"] <= 1.0
        assert 2.0 <= records[-1][f"efl/gamma_{group}"] <= 2.0 + 8.0
    assert all("grad_norm" in r for r in records)
    assert list(Path(trained).glob("events.out.tfevents.*"))
    log = (Path(trained) / "log.txt").read_text()
    assert "eta:" in log and "EFL statistics" in log


def test_checkpoints_hold_model_statistics_optimizer_and_scheduler(trained):
    ckpt = load_checkpoint(Path(trained) / "model_0000007.pth")
    assert ckpt["iteration"] == 7
    assert set(STAT_BUFFERS) <= set(ckpt["model"])
    assert ckpt["model"]["cls_loss.pos_grad"].abs().sum() > 0  # statistics were accumulated
    # SimpleTrainer.state_dict: the optimizer with its momentum buffers, and the hooks' states
    assert ckpt["trainer"]["iteration"] == 7
    assert ckpt["trainer"]["optimizer"]["state"], "momentum buffers are checkpointed"
    assert "LRScheduler" in ckpt["trainer"]["hooks"]
    assert (Path(trained) / "last_checkpoint").read_text() == "model_final.pth"
    assert not list(Path(trained).glob(".*.tmp")), "atomic writes leave no temporary files"
    # The buffers each rank saved at the end are those of the final checkpoint.
    final = load_checkpoint(Path(trained) / "model_final.pth")["model"]
    saved = load_checkpoint(Path(trained) / "efl_statistics" / "rank0.pth")["buffers"]["cls_loss"]
    for name in STAT_BUFFERS:
        assert torch.equal(saved[name.split(".")[1]], final[name])


def test_training_ends_with_lvis_metrics_in_final_results(trained):
    results = json.loads((Path(trained) / "final_results.json").read_text())
    assert {"AP", "APr", "APc", "APf"} <= set(results["bbox"])
    assert results["wall_time_s"] > 0 and results["world_size"] == 1


def test_eval_only_returns_the_lvis_metrics_of_the_loaded_weights(trained, tiny_data, tmp_path):
    run_train_net(tiny_data, tmp_path, "--eval-only", f"train.init_checkpoint={trained}/model_final.pth")
    results = json.loads((tmp_path / "final_results.json").read_text())
    reference = json.loads((Path(trained) / "final_results.json").read_text())
    assert results["mode"] == "eval-only"
    for key in ("AP", "APr", "APc", "APf"):
        assert results["bbox"][key] == pytest.approx(reference["bbox"][key], abs=1e-6)


def test_resume_after_kill_continues_iterations_optimizer_and_statistics(trained, tiny_data, tmp_path):
    # Kill -9 a run right after its first checkpoint, resume it, and compare with the
    # uninterrupted run: same iterations, same weights, same EFL statistics.
    proc = subprocess.Popen(train_net_command(tmp_path), cwd=REPO, env=_env(tiny_data),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "last_checkpoint"
    deadline = time.time() + 180
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), "the first run ended before writing a checkpoint"
    resumed_from = last.read_text()
    for path in tmp_path.glob("model_*.pth"):
        load_checkpoint(path)  # every file under a checkpoint name is complete
    checkpoint = load_checkpoint(tmp_path / resumed_from)

    proc = run_train_net(tiny_data, tmp_path, "--resume")
    start = checkpoint["iteration"] + 1
    assert f"Starting training from iteration {start}" in proc.stderr + proc.stdout
    resumed_iters = [r["iteration"] for r in metrics_records(tmp_path)]
    assert resumed_iters[-(12 - start):] == list(range(start, 12))

    resumed = load_checkpoint(tmp_path / "model_final.pth")["model"]
    reference = load_checkpoint(Path(trained) / "model_final.pth")["model"]
    # The resumed run started from the checkpointed sums, not from zero.
    assert bool((resumed["cls_loss.pos_grad"] >= checkpoint["model"]["cls_loss.pos_grad"]).all())
    assert resumed.keys() == reference.keys()
    for name, value in reference.items():
        if value.is_floating_point():
            torch.testing.assert_close(resumed[name], value, rtol=1e-3, atol=1e-5, msg=name)


def test_two_gloo_processes_keep_identical_statistics(tiny_data, tmp_path):
    run_train_net(tiny_data, tmp_path, "--num-gpus", "2", "--dist-url", "auto", "train.max_iter=4",
                  "train.checkpointer.period=100")
    ranks = [load_checkpoint(tmp_path / "efl_statistics" / f"rank{r}.pth") for r in (0, 1)]
    assert ranks[0]["iteration"] == ranks[1]["iteration"] == 3
    for name in ("pos_grad", "neg_grad", "pos_neg"):
        a, b = (r["buffers"]["cls_loss"][name] for r in ranks)
        assert torch.equal(a, b), name
    assert ranks[0]["buffers"]["cls_loss"]["neg_grad"].abs().sum() > 0
    assert json.loads((tmp_path / "final_results.json").read_text())["world_size"] == 2
