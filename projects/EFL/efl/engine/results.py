"""Where a run's records go: the evaluation summary file that scripts read after a run, the
sub-directory of an evaluation-only run, and metrics.json on resuming."""
import hashlib
import json
import os

from ..utils.files import atomic_write

__all__ = ["FINAL_RESULTS_FILE", "METRICS_FILE", "drop_metrics_from", "evaluation_output_dir", "first_missing_directory",
           "write_final_results"]

FINAL_RESULTS_FILE = "final_results.json"
METRICS_FILE = "metrics.json"  # Detectron2's JSONWriter: one json object per line, with "iteration"


# Detectron2's LVIS evaluation reports a metric it cannot compute (a frequency group with no
# category in the evaluated set) as -1 x 100.
ABSENT = -100.0


def write_final_results(output_dir, results, **extra):
    """Atomically write ``<output_dir>/final_results.json``: Detectron2's result dict
    (``{"bbox": {"AP": ..., "APr": ...}}``) plus ``extra`` top-level fields (wall time, iteration).
    A metric Detectron2 reports as -100 (e.g. APf of a set without frequent classes) is written as
    null: absent, not a score. Returns the path."""
    payload = {k: {m: (None if v == ABSENT else v) for m, v in v.items()} if hasattr(v, "items") else v
               for k, v in (results or {}).items()}
    overlap = set(payload) & set(extra)
    if overlap:
        raise ValueError(f"extra fields {sorted(overlap)} collide with result tasks")
    payload.update(extra)
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, FINAL_RESULTS_FILE)
    atomic_write(path, lambda f: json.dump(payload, f, indent=2, sort_keys=True), mode="w")
    return path


def evaluation_output_dir(output_dir, dataset_names, checkpoint):
    """``<output_dir>/eval/<datasets>-<checkpoint stem>-<hash>``: where an evaluation-only run
    writes its config.yaml, log and final_results.json, so that it never replaces the training
    run's own. ``<hash>`` is the first 8 hex digits of the SHA-1 of the checkpoint's absolute path
    (of the URL as given for a remote one): checkpoints of the same file name from different runs
    (``output/a/model_final.pth``, ``output/b/model_final.pth``) get different folders, and
    evaluating the same file again replaces its own record.

    Args:
        output_dir: the run's ``train.output_dir``.
        dataset_names: the evaluated dataset name, or a list of them (joined with "+").
        checkpoint: the evaluated weights file.
    """
    names = [dataset_names] if isinstance(dataset_names, str) else list(dataset_names)
    checkpoint = str(checkpoint)
    stem = os.path.splitext(os.path.basename(checkpoint))[0]
    location = checkpoint if "://" in checkpoint else os.path.abspath(checkpoint)
    digest = hashlib.sha1(location.encode("utf-8")).hexdigest()[:8]
    return os.path.join(output_dir, "eval", f"{'+'.join(names)}-{stem}-{digest}")


def drop_metrics_from(output_dir, start_iter):
    """Remove the records of iterations ``>= start_iter`` from ``<output_dir>/metrics.json``.

    A run killed after its last checkpoint has logged iterations that ``--resume`` runs again;
    Detectron2's JSONWriter appends, so the file would hold them twice. Call it before the writer
    opens the file. Lines that are not json records with an iteration are kept. Returns the number
    of records removed.
    """
    path = os.path.join(output_dir, METRICS_FILE)
    if not os.path.isfile(path):
        return 0
    with open(path) as f:
        lines = f.readlines()
    kept = []
    for line in lines:
        try:
            iteration = json.loads(line).get("iteration")
        except (ValueError, AttributeError):
            iteration = None
        if not (isinstance(iteration, int) and iteration >= start_iter):
            kept.append(line)
    if len(kept) < len(lines):
        atomic_write(path, lambda f: f.writelines(kept), mode="w")
    return len(lines) - len(kept)


def first_missing_directory(path):
    """The topmost of ``path`` and its parents that does not exist yet (None when ``path`` does):
    what a run writing into ``path`` creates, and a failed run removes again."""
    path, missing = os.path.abspath(path), None
    while not os.path.exists(path):
        path, missing = os.path.dirname(path), path
    return missing
