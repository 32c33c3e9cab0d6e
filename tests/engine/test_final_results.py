"""final_results.json: a metric Detectron2 cannot compute is null (absent), not -100."""
import json

from efl.engine.results import write_final_results


def test_absent_frequency_group_is_written_as_null(tmp_path):
    # Detectron2's LVIS evaluation of a set without frequent classes reports APf = -1 x 100
    results = {"bbox": {"AP": 12.5, "APr": 0.0, "APc": 30.0, "APf": -100.0}}
    path = write_final_results(str(tmp_path), results, wall_time_s=3.0)
    with open(path) as f:
        written = json.load(f)
    assert written["bbox"] == {"AP": 12.5, "APr": 0.0, "APc": 30.0, "APf": None}
    assert written["wall_time_s"] == 3.0
