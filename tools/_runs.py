"""What tools/demo.py and tools/longtail_study.py share: training a config with
tools/train_net.py in a child process, reading the run's final results, and a markdown table."""
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# LVIS box AP overall, at IoU 0.5, and per frequency group: the columns every table reports.
LVIS_METRICS = ("AP", "AP50", "APr", "APc", "APf")


def user_overrides(overrides):
    """The key=value overrides of an ``argparse.REMAINDER`` argument, without a leading ``--``."""
    return [o for o in overrides if o != "--"]


def train(config, output_dir, overrides=(), *, log_file=None, threads=None):
    """Train and evaluate ``config`` (a path relative to the repository) into ``output_dir`` with
    tools/train_net.py in a child process; returns the wall time in seconds.

    Args:
        config: e.g. "configs/demo/efl_synthetic_small.py".
        output_dir: the run's ``train.output_dir``.
        overrides: further key=value overrides, applied after ``train.output_dir``.
        log_file: where the child's console goes; None shows it here.
        threads: the child's torch/OpenMP thread count (OMP_NUM_THREADS); None leaves it as set.
    """
    cmd = [sys.executable, os.path.join(REPO, "tools", "train_net.py"), "--config-file",
           os.path.join(REPO, config), f"train.output_dir={output_dir}", *overrides]
    print(f"==> {' '.join(cmd[1:])}", flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads)) if threads else None
    start = time.time()
    if log_file is None:
        subprocess.run(cmd, check=True, cwd=REPO, env=env)
    else:
        with open(log_file, "w") as console:
            code = subprocess.run(cmd, cwd=REPO, env=env, stdout=console, stderr=subprocess.STDOUT).returncode
        if code:
            with open(log_file) as console:
                tail = console.read()[-3000:]
            raise SystemExit(f"{tail}\n==> training {config} into {output_dir} failed (exit {code}); "
                             f"its console is in {log_file}")
    return time.time() - start


def results_path(output_dir):
    from efl.engine.results import FINAL_RESULTS_FILE

    return os.path.join(output_dir, FINAL_RESULTS_FILE)


def read_results(output_dir):
    """The run's final results (Detectron2's result dict plus the wall time); a missing file
    ends the program with a message naming it."""
    path = results_path(output_dir)
    if not os.path.exists(path):
        raise SystemExit(f"{path} is missing: the run in {output_dir} has not finished")
    with open(path) as f:
        return json.load(f)


def format_metric(value, digits=1):
    """A metric of final_results.json for a table: null (a frequency group the set lacks) is
    "absent"."""
    return "absent" if value is None else f"{value:.{digits}f}"


def markdown_table(header, rows):
    """A markdown table: ``header`` is a list of column names, ``rows`` lists of cell strings."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
