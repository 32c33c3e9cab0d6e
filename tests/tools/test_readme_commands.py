"""The README's commands run as written, from the repository root of a clone, without an activated
environment: each command of its ```bash blocks either runs here (with arguments appended that
make it tiny) or, when it cannot run on a CPU in a test, has its program, flags, config and
overrides checked, with the reason written below. A command the table does not know fails."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts import load_script

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"

# The tiny synthetic preset (12 classes, a few images) for runs of the demo's configs.
TINY_SYNTHETIC = [
    "dataloader.train.dataset.names=synthetic_lt_tiny_train",
    "dataloader.test.dataset.names=synthetic_lt_tiny_val",
    "model.num_classes=12",
    "train.checkpointer.period=100000",
]

# (pattern of the command as written, how it is checked, what):
#   "run":   run as written plus the listed arguments ({tmp} is a temporary directory);
#   "check": cannot run in a test, for the reason given; program, flags, config and overrides
#            are checked;
#   "make":  `make -n TARGET` (the target exists and expands), for the reason given;
#   "env":   an `export` the following commands of the block see.
RULES = [
    (r"make demo", "make", "the demo trains two detectors for about 10 minutes"),
    (r"make test", "make", "`make test` runs this test suite"),
    (r"make gpu-check", "make", "needs a CUDA GPU; tests/tools/test_gpu_check.py runs it without one"),
    (r"export EFL_(LVIS|OID)_ROOT=\S+", "env", None),
    (r"\.venv/bin/python tools/train_net\.py --config-file configs/(efl|eqfl|focal)_(improved_baseline_r(50|101)"
     r"_2x_rfs|yolox_ip_[smlx]_300e_rfs|oids_r(50|101)_2x_random)\.py( .*)?", "check",
     "needs LVIS v1 or Open Images, and GPUs"),
    (r"\.venv/bin/python tools/train_net\.py --config-file configs/\w+_custom\.py( .*)?", "check",
     "needs the user's own dataset"),
    (r"\.venv/bin/python tools/train_net\.py --config-file configs/demo/\w+\.py( .*)?", "check",
     "a demo run trains for minutes; tests/tools/test_demo.py runs the demo on the tiny preset"),
    (r"\.venv/bin/python tools/demo\.py( .*)?", "check",
     "trains two detectors for about 10 minutes; tests/tools/test_demo.py runs it on the tiny preset"),
    (r"\.venv/bin/python tools/predict\.py .*", "check",
     "needs trained weights and the user's images; tests/tools/test_predict.py runs it on the tiny set"),
    (r"\.venv/bin/python tools/export_model\.py .*", "check",
     "needs trained weights; tests/export/test_export_parity.py exports both families and a converted checkpoint"),
    (r"\.venv/bin/python tools/benchmark_inference\.py .*", "check",
     "exports and times a ResNet-50 detector at 800 x 1067 and YOLOX-IP-S at 640: minutes on 2 cores"),
    (r"\.venv/bin/python tools/convert_torchvision_to_d2\.py .*", "check",
     "needs the user's torchvision weights; tests/tools/test_convert_torchvision.py converts a random ResNet"),
    (r"\.venv/bin/python tools/(convert|evaluate)_openimages\.py .*", "check", "needs Open Images"),
    (r"\.venv/bin/python tools/convert_eod_checkpoint\.py \S+\.pth \S+\.pth", "check",
     "needs a checkpoint released by the reference (tests/tools/test_convert_eod_checkpoint.py "
     "converts state_dicts laid out as the reference's)"),
    (r"\.venv/bin/python tools/longtail_study\.py .*", "run",
     ["--seeds", "0", "--losses", "focal", "--max-iter", "2", "--output-dir", "{tmp}", *TINY_SYNTHETIC]),
    (r"\.venv/bin/python tools/benchmark_loss\.py .*", "run",
     ["--repeats", "1", "--num-anchors", "64", "--num-classes", "8", "--device", "cpu"]),
    (r"\.venv/bin/python tools/benchmark_model\.py .*", "check",
     "trains and runs three detectors (two ResNet-50): 1-3 minutes on 2 cores even at 64 px"),
    (r"\.venv/bin/python tools/benchmark_mapper\.py .*", "run",
     ["--samples", "1", "--warmup", "1", "--images", "2", "--input-size", "64"]),
    (r"\.venv/bin/python tools/benchmark_eval\.py .*", "check",
     "evaluates result sets of the real validation sizes: minutes and GBs; tests/evaluation check the metrics"),
    (r"\.venv/bin/python tools/ratio_by_frequency\.py .*", "check",
     "needs two finished training runs; tests/data/test_synthetic_fine_grained.py checks it on hand values"),
]


def readme_commands():
    """``[(block number, [commands])]`` of the README's ```bash blocks: continuation lines joined,
    comments and blank lines dropped."""
    blocks = re.findall(r"^```bash\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    result = []
    for number, block in enumerate(blocks):
        commands = []
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            if tokens:
                commands.append(shlex.join(tokens))
        result.append((number, commands))
    return result


def rule_for(command):
    matches = [rule for rule in RULES if re.fullmatch(rule[0], command)]
    assert len(matches) == 1, f"README command without exactly one rule in {__file__}: {command}"
    return matches[0]


def plain_environment():
    """The environment of a fresh shell: no activated virtual environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(REPO / ".venv")))
    return env


def load_train_net():
    return load_script("tools/train_net.py")


def check_program(argv):
    """The program exists as the command names it; a script run directly is executable in git."""
    if argv[0].endswith("python") or argv[0].endswith("python3"):
        assert (REPO / argv[0]).exists() or argv[0] in ("python", "python3"), argv[0]
        script = argv[1]
    else:
        script = argv[0]
        mode = subprocess.run(["git", "ls-files", "-s", script], cwd=REPO, capture_output=True,
                              text=True).stdout.split()[0]
        assert mode == "100755", f"{script} is run directly but is not executable in git"
    assert (REPO / script).is_file(), script
    assert (REPO / script).read_text().startswith("#!/usr/bin/env python"), f"{script} has no shebang"
    return script


def check_train_net_command(argv, env):
    """Flags parse with train_net's parser; the config loads and every override names a key."""
    train_net = load_train_net()
    args = train_net.build_parser().parse_args(argv[2:])
    old = dict(os.environ)
    os.environ.update(env)
    try:
        cfg = train_net.load_config(args)
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert args.opts is not None
    return cfg


def check_flags(argv, env):
    """Every --flag of the command is one the script's --help lists."""
    proc = subprocess.run([*argv[:2], "--help"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    unknown = [a for a in argv[2:] if a.startswith("--") and a.split("=")[0] not in proc.stdout]
    assert not unknown, f"{argv[1]} --help does not list {unknown}"


COMMANDS = [(number, command) for number, commands in readme_commands() for command in commands]


def test_the_readme_parser_finds_the_two_commands_first_and_joins_continuations():
    assert COMMANDS[:2] == [(0, "make demo"), (0, "make test")]
    assert any(c.endswith("--eval-only train.init_checkpoint=output/efl_improved_baseline_r50_2x_rfs/"
                          "model_final.pth") for _, c in COMMANDS)


@pytest.mark.parametrize("number", sorted({n for n, _ in COMMANDS}))
def test_readme_command_block_runs_as_written(number, tmp_path):
    env = plain_environment()
    for command in dict(readme_commands())[number]:
        pattern, how, what = rule_for(command)
        argv = shlex.split(command)
        if how == "env":
            name, value = argv[1].split("=", 1)
            env[name] = value
        elif how == "make":
            proc = subprocess.run(["make", "-n", argv[1]], cwd=REPO, env=env, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
        elif how == "check":
            script = check_program(argv)
            if script == "tools/train_net.py":
                check_train_net_command(argv, env)
            else:
                check_flags(argv, env)
        else:
            check_program(argv)
            extra = [a.replace("{tmp}", str(tmp_path)) for a in what]
            proc = subprocess.run(argv + extra, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, f"{command}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_train_net_without_the_environment_says_how_to_run_it():
    # -S: no site-packages, as with a python that does not have the project installed
    env = {k: v for k, v in plain_environment().items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-S", "tools/train_net.py", "--help"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Run the tools with the project's environment" in proc.stderr
    assert ".venv/bin/python tools/train_net.py" in proc.stderr


def test_readme_override_examples_name_existing_keys():
    # the overrides the README shows in comments and text, against the LVIS config they go with
    train_net = load_train_net()
    args = train_net.build_parser().parse_args([
        "--config-file", "configs/efl_improved_baseline_r50_2x_rfs.py",
        "dataloader.train.total_batch_size=8", "optimizer.lr=0.01",
        "dataloader.train.dataset.names=lvis_v1_train", "dataloader.test.dataset.names=lvis_v1_val",
        "train.init_checkpoint_partial=True", "train.eval_invalid_boxes=report"])
    cfg = train_net.load_config(args)
    assert cfg.dataloader.train.total_batch_size == 8 and cfg.train.init_checkpoint_partial is True


def test_every_tool_script_is_executable_in_git_with_a_shebang():
    listing = subprocess.run(["git", "ls-files", "-s", "tools"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    modes = {line.split("\t")[1]: line.split()[0] for line in listing}
    scripts = [path for path in modes if path.endswith(".py")
               and 'if __name__ == "__main__":' in (REPO / path).read_text()]
    assert "tools/train_net.py" in scripts
    for path in scripts:
        assert modes[path] == "100755", f"{path} is not executable in git"
        assert (REPO / path).read_text().startswith("#!/usr/bin/env python"), f"{path} has no shebang"
