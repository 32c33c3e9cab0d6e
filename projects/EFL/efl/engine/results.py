"""The evaluation summary file that scripts read after a run."""
import json
import os

from .checkpoint import atomic_write

__all__ = ["write_final_results", "FINAL_RESULTS_FILE"]

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
