"""Where a run's records go: the evaluation summary file that scripts read after a run, and the
sub-directory of an evaluation-only run."""
import json
import os

from .checkpoint import atomic_write

__all__ = ["FINAL_RESULTS_FILE", "evaluation_output_dir", "write_final_results"]

FINAL_RESULTS_FILE = "final_results.json"


def write_final_results(output_dir, results, **extra):
    """Atomically write ``<output_dir>/final_results.json``: Detectron2's result dict
    (``{"bbox": {"AP": ..., "APr": ...}}``) plus ``extra`` top-level fields (wall time, iteration).
    Returns the path."""
    payload = {k: dict(v) if hasattr(v, "items") else v for k, v in (results or {}).items()}
    overlap = set(payload) & set(extra)
    if overlap:
        raise ValueError(f"extra fields {sorted(overlap)} collide with result tasks")
    payload.update(extra)
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, FINAL_RESULTS_FILE)
    atomic_write(path, lambda f: json.dump(payload, f, indent=2, sort_keys=True), mode="w")
    return path


def evaluation_output_dir(output_dir, dataset_names, checkpoint):
    """``<output_dir>/eval/<datasets>-<checkpoint stem>``: where an evaluation-only run writes its
    config.yaml, log and final_results.json, so that it never replaces the training run's own.

    Args:
        output_dir: the run's ``train.output_dir``.
        dataset_names: the evaluated dataset name, or a list of them (joined with "+").
        checkpoint: the evaluated weights file.
    """
    names = [dataset_names] if isinstance(dataset_names, str) else list(dataset_names)
    stem = os.path.splitext(os.path.basename(str(checkpoint)))[0]
    return os.path.join(output_dir, "eval", f"{'+'.join(names)}-{stem}")
