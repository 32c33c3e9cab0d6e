"""tools/train_net.py run as users run it (a subprocess), on the tiny LVIS-format set, on CPU."""
import hashlib
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


def run_train_net(data_dir, output_dir, *args, timeout=240, returncode=0):
    proc = subprocess.run(train_net_command(output_dir, *args), cwd=REPO, env=_env(data_dir),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == returncode, \
        f"train_net exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def _env(data_dir):
    # FORCE_COLOR: Detectron2 colours messages as on a terminal, so log.txt is tested against it
    return {**os.environ, "EFL_TEST_TINY_LVIS": str(data_dir), "OMP_NUM_THREADS": "1", "FORCE_COLOR": "1"}


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
    proc = run_train_net(tiny_data, output_dir)
    (output_dir / "console.txt").write_text(proc.stdout + proc.stderr)
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


def eval_record_dir(output_dir, checkpoint):
    """The folder the README promises an --eval-only run of ``checkpoint``: its dataset, file stem
    and the first 8 hex digits of the SHA-1 of its absolute path."""
    digest = hashlib.sha1(os.path.abspath(checkpoint).encode()).hexdigest()[:8]
    return Path(output_dir) / "eval" / f"efl_test_tiny-{Path(checkpoint).stem}-{digest}"


def snapshot(directory):
    """{relative path: bytes} of every file under ``directory``."""
    return {p.relative_to(directory): p.read_bytes() for p in Path(directory).rglob("*") if p.is_file()}


def test_eval_only_writes_its_own_record_and_leaves_the_training_record_alone(trained, tiny_data):
    before = {k: v for k, v in snapshot(trained).items() if k.parts[0] != "eval"}
    # the README's command: the same output_dir as the training run, other settings changed
    run_train_net(tiny_data, trained, "--eval-only", f"train.init_checkpoint={trained}/model_final.pth",
                  "train.checkpointer.period=1")
    after = {k: v for k, v in snapshot(trained).items() if k.parts[0] != "eval"}
    assert after == before, "the training run's files changed"
    eval_dir = eval_record_dir(trained, f"{trained}/model_final.pth")
    assert {"config.yaml", "log.txt", "final_results.json"} <= {p.name for p in eval_dir.iterdir()}
    results = json.loads((eval_dir / "final_results.json").read_text())
    reference = json.loads((Path(trained) / "final_results.json").read_text())
    assert results["mode"] == "eval-only" and results["checkpoint"] == f"{trained}/model_final.pth"
    assert reference["mode"] == "train"
    for key in ("AP", "APr", "APc", "APf"):
        assert results["bbox"][key] == pytest.approx(reference["bbox"][key], abs=1e-6)


def test_eval_only_with_resume_evaluates_the_last_checkpoint_of_the_run(trained, tiny_data):
    proc = run_train_net(tiny_data, trained, "--eval-only", "--resume")
    assert f"Evaluating {trained}/model_final.pth" in proc.stdout
    assert (eval_record_dir(trained, f"{trained}/model_final.pth") / "final_results.json").is_file()


def test_evaluation_states_the_ground_truth_boxes_the_checks_changed(trained, tmp_path):
    from .test_eval_ground_truth import CLIPPED, DROPPED, add_boxes

    data = tmp_path / "data"
    write_tiny_lvis(str(data))
    add_boxes(data / "annotations.json", CLIPPED + DROPPED)
    weights = f"train.init_checkpoint={trained}/model_final.pth"
    proc = run_train_net(data, tmp_path, "--eval-only", weights, returncode=1)
    assert "2 of the 9 boxes of the evaluation set 'efl_test_tiny' have zero area or lie entirely " \
           "outside their image" in proc.stdout
    proc = run_train_net(data, tmp_path, "--eval-only", weights, "train.eval_invalid_boxes=report")
    assert "The dataset checks clipped 1 of them to their image and dropped 2" in proc.stdout
    results = json.loads((eval_record_dir(tmp_path, f"{trained}/model_final.pth") / "final_results.json").read_text())
    (report,) = results["ground_truth"]
    assert (report["boxes"], report["clipped"], report["dropped"]) == (9, 1, 2)


def test_mistyped_override_is_refused_before_anything_runs(tiny_data, tmp_path):
    proc = run_train_net(tiny_data, tmp_path, "train.max_iters=3", returncode=2)
    assert "override 'train.max_iters': the config has no key 'train.max_iters'; did you mean " \
           "'train.max_iter'?" in proc.stderr
    assert not (tmp_path / "config.yaml").exists()


def test_eval_only_without_weights_is_an_error(tiny_data, tmp_path):
    # the mistyped key of the issue, with + to get past the key check: still no weights
    proc = run_train_net(tiny_data, tmp_path, "--eval-only", "+train.init_checkpont=x.pth", returncode=2)
    assert "--eval-only needs weights: set train.init_checkpoint=PATH" in proc.stderr
    proc = run_train_net(tiny_data, tmp_path, "--eval-only", "--resume", returncode=2)
    assert f"--resume found no last_checkpoint in {tmp_path}" in proc.stderr


def test_missing_init_checkpoint_is_an_error_before_the_data_are_loaded(tiny_data, tmp_path):
    proc = run_train_net(tiny_data, tmp_path, f"train.init_checkpoint={tmp_path}/R-50.pkl", returncode=2)
    assert f"train.init_checkpoint {tmp_path}/R-50.pkl does not exist" in proc.stderr
    assert "Loaded" not in proc.stdout + proc.stderr


def test_eval_only_refuses_a_checkpoint_of_another_class_count(trained, tiny_data, tmp_path):
    # a checkpoint of a 4-class model: the classifier's last output channels removed
    state = load_checkpoint(Path(trained) / "model_final.pth")
    state["model"] = {k: v[:4 * (v.shape[0] // 6)] if k.startswith("head.cls_score") else v
                      for k, v in state["model"].items()}
    path = tmp_path / "four_classes.pth"
    torch.save(state, path)
    proc = run_train_net(tiny_data, tmp_path, "--eval-only", f"train.init_checkpoint={path}", returncode=1)
    assert f"{path}: 2 weight(s) have another shape than the model's: head.cls_score.weight" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "eval").exists(), "a failed --eval-only left its record folder"


def test_eval_only_records_of_same_named_checkpoints_of_two_runs_do_not_collide(trained, tiny_data, tmp_path):
    checkpoints = [tmp_path / run / "model_final.pth" for run in ("a", "b")]
    for path in checkpoints:
        path.parent.mkdir()
        path.write_bytes((Path(trained) / "model_final.pth").read_bytes())
    for path in checkpoints:
        run_train_net(tiny_data, tmp_path / "out", "--eval-only", f"train.init_checkpoint={path}")
    records = sorted((tmp_path / "out" / "eval").iterdir())
    assert records == sorted(eval_record_dir(tmp_path / "out", path) for path in checkpoints)
    for path in checkpoints:
        results = json.loads((eval_record_dir(tmp_path / "out", path) / "final_results.json").read_text())
        assert results["checkpoint"] == str(path)


def test_a_worker_error_ends_a_two_process_run_with_its_message_and_no_launcher_traceback(
        trained, tiny_data, tmp_path):
    state = load_checkpoint(Path(trained) / "model_final.pth")
    state["model"] = {k: v for k, v in state["model"].items() if not k.startswith("head.cls_score")}
    path = tmp_path / "no_classifier.pth"
    torch.save(state, path)
    proc = run_train_net(tiny_data, tmp_path, "--eval-only", "--num-gpus", "2", "--dist-url", "auto",
                         f"train.init_checkpoint={path}", returncode=1)
    assert f"{path} does not match the model: 2 model weight(s) not in the file: head.cls_score" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_console_is_quiet_and_log_txt_keeps_the_environment_config_and_model(trained):
    console = (Path(trained) / "console.txt").read_text()
    log = (Path(trained) / "log.txt").read_text()
    for record in ("Environment info:", "Contents of args.config_file=", "Model:\nImprovedRetinaNet"):
        assert record in log and record not in console, record
    assert "\x1b[" in console, "FORCE_COLOR made Detectron2 colour its messages"
    assert "\x1b" not in log, "no terminal escape codes in log.txt"
    assert "torch.jit.script` is deprecated" not in console
    # one value, one line: each statistic is printed by the statistics hook only
    assert console.count("efl/g_rare:") == 12 and "cls_loss/g_rare" not in console


def test_verbose_prints_the_records_and_help_shows_lazyconfig_overrides(tiny_data, tmp_path):
    proc = run_train_net(tiny_data, tmp_path, "--verbose", "train.max_iter=1", "dataloader.evaluator=null")
    assert "Environment info:" in proc.stdout and "Model:\nImprovedRetinaNet" in proc.stdout
    proc = subprocess.run([sys.executable, "tools/train_net.py", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "train.max_iter=100 optimizer.lr=0.01" in proc.stdout and "MODEL.WEIGHTS" not in proc.stdout


def test_divergence_names_the_iteration_the_loss_and_the_last_checkpoint(tiny_data, tmp_path):
    proc = run_train_net(tiny_data, tmp_path, "optimizer.lr=1e6", "train.clip_grad.enabled=False",
                         "train.checkpointer.period=1", returncode=1)
    output = proc.stdout + proc.stderr
    match = re.search(r"Training diverged at iteration (\d+): a loss became NaN or Inf", output)
    assert match, output[-3000:]
    iteration = int(match.group(1))
    assert iteration >= 1
    last = f"model_{iteration - 1:07d}.pth"
    assert f"The last checkpoint, {tmp_path}/{last} (iteration {iteration - 1}), was written before" in output
    assert "loss_cls:" in output.split("Training diverged")[1]
    assert output.count("Traceback (most recent call last)") == 1


def test_resume_goes_past_a_truncated_last_checkpoint(trained, tiny_data, tmp_path):
    for path in Path(trained).glob("model_*.pth"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "last_checkpoint").write_text("model_final.pth")
    final = tmp_path / "model_final.pth"
    final.write_bytes(final.read_bytes()[:1000])
    os.utime(tmp_path / "model_0000007.pth", (1, 1))  # older than model_0000011.pth
    proc = run_train_net(tiny_data, tmp_path, "--resume", "dataloader.evaluator=null")
    output = proc.stdout + proc.stderr
    assert f"Cannot resume from {final}: checkpoint {final} cannot be read" in output
    assert f"Resuming from {tmp_path}/model_0000011.pth, the newest readable checkpoint" in output
    assert "Starting training from iteration 12" in output


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


def _eval_only_results(tiny_data, output_dir, checkpoint, *args):
    run_train_net(tiny_data, output_dir, "--eval-only", *args, f"train.init_checkpoint={checkpoint}")
    (record,) = Path(output_dir).glob("eval/*/final_results.json")
    return json.loads(record.read_text())


def test_two_gloo_processes_report_the_ap_of_the_weights_they_save(tiny_data, tmp_path):
    # Each process's BatchNorm sees only its own images (broadcast_buffers=False) and only rank 0
    # saves: the AP the run reports must still be the AP of model_final.pth, in 1 or 2 processes.
    train_dir = tmp_path / "train"
    run_train_net(tiny_data, train_dir, "--num-gpus", "2", "--dist-url", "auto", "train.max_iter=8")
    reported = json.loads((train_dir / "final_results.json").read_text())["bbox"]
    assert reported["AP"] > 0
    checkpoint = train_dir / "model_final.pth"
    for processes in ("1", "2"):
        evaluated = _eval_only_results(tiny_data, tmp_path / f"eval{processes}", checkpoint,
                                       "--num-gpus", processes, "--dist-url", "auto")
        assert evaluated["bbox"] == reported, f"--eval-only in {processes} process(es)"


def _killed_checkpoint_write(path):
    """What a run killed by SIGKILL inside a checkpoint write leaves: atomic_write's temporary file."""
    code = ("import os, signal, sys; from efl.utils.files import atomic_write; "
            "atomic_write(sys.argv[1], lambda f: os.kill(os.getpid(), signal.SIGKILL))")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    (temporary,) = Path(path).parent.glob(f".{Path(path).name}.*.tmp")
    return temporary


def test_resume_removes_an_interrupted_write_and_logs_each_iteration_once(trained, tiny_data, tmp_path):
    # A run killed while writing model_0000011.pth after it had logged iterations 8..11: resuming
    # from model_0000007.pth runs 8..11 again.
    for name in ("model_0000007.pth", "metrics.json"):
        (tmp_path / name).write_bytes((Path(trained) / name).read_bytes())
    (tmp_path / "last_checkpoint").write_text("model_0000007.pth")
    temporary = _killed_checkpoint_write(tmp_path / "model_0000011.pth")
    assert [r["iteration"] for r in metrics_records(tmp_path)] == list(range(12))

    proc = run_train_net(tiny_data, tmp_path, "--resume", "dataloader.evaluator=null")
    assert "Starting training from iteration 8" in proc.stdout + proc.stderr
    assert not temporary.exists()
    assert not list(tmp_path.glob(".*.tmp"))
    assert [r["iteration"] for r in metrics_records(tmp_path)] == list(range(12))


def test_a_truncated_training_picture_stops_the_run_with_an_error_naming_it(tiny_data, tmp_path):
    data = tmp_path / "data"
    write_tiny_lvis(str(data))
    picture = sorted((data / "train2017").iterdir())[1]
    picture.write_bytes(picture.read_bytes()[:200])
    proc = run_train_net(data, tmp_path / "run", "train.max_iter=2", "dataloader.evaluator=null", returncode=1)
    assert f"image {picture} cannot be read (truncated or corrupt?)" in proc.stdout
