"""efl.compat.evaluation: each reach into detectron2's LVIS evaluation works, and each is still
needed by the installed detectron2."""
import inspect
import sys
import types

import detectron2.evaluation.lvis_evaluation as d2_lvis_evaluation
import pytest
from efl.compat.evaluation import lvis_module_as


def test_detectron2_still_keeps_its_lvis_evaluation_of_a_results_list_private():
    assert not hasattr(d2_lvis_evaluation, "evaluate_predictions_on_lvis"), \
        "detectron2 exports it now: call the public name"


def test_detectron2_lvis_evaluator_still_imports_lvis_inside_its_methods_without_a_library_argument():
    # The swap of sys.modules["lvis"] only reaches imports that run at call time.
    assert "from lvis import" in inspect.getsource(d2_lvis_evaluation.LVISEvaluator.__init__)
    assert "from lvis import" in inspect.getsource(d2_lvis_evaluation._evaluate_predictions_on_lvis)
    parameters = inspect.signature(d2_lvis_evaluation.LVISEvaluator.__init__).parameters
    assert not {"backend", "lvis_api", "lvis_module"} & set(parameters), \
        "detectron2's LVISEvaluator selects its library now: drop lvis_module_as"


def test_lvis_module_as_gives_the_module_inside_the_block_and_restores_the_previous_one(capfd):
    class FakeEval:
        def __init__(self, gt, dt, iou_type):
            self.iou_type = iou_type

        def run(self):  # as hotcoco's: summarizes and prints
            print("AP50 = 0.698")

        def print_results(self):
            raise AssertionError("the library's summary print must not run")

    fake = types.SimpleNamespace(LVIS="fake LVIS", LVISEval=FakeEval, LVISResults="fake LVISResults")
    before = sys.modules.get("lvis")
    with lvis_module_as(fake):
        from lvis import LVIS, LVISEval, LVISResults

        assert (LVIS, LVISResults) == ("fake LVIS", "fake LVISResults")
        # the module's LVISEval, without its summary print (Detectron2 logs the same table after it)
        assert LVISEval.__name__ == "FakeEval"
        evaluation = LVISEval("gt", "dt", "bbox")
        evaluation.run()
        evaluation.print_results()
        assert evaluation.iou_type == "bbox"  # the library's attributes and methods stay reachable
    assert capfd.readouterr().out == ""
    assert sys.modules.get("lvis") is before


def test_hotcocos_lvis_eval_still_prints_its_summary_in_run_and_is_not_subclassable(tmp_path, capfd):
    # Why lvis_module_as wraps LVISEval instead of subclassing it and silences run(): hotcoco's
    # LVISEval returns its Rust COCOeval, whose run() prints the summary itself.
    import json

    import hotcoco

    gt = {
        "images": [{"id": 1, "width": 100, "height": 100, "neg_category_ids": [],
                    "not_exhaustive_category_ids": []}],
        "categories": [{"id": 1, "name": "thing", "frequency": "f"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    lvis_gt = hotcoco.LVIS(str(tmp_path / "gt.json"))
    results = hotcoco.LVISResults(lvis_gt, [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40],
                                            "score": 0.9}])
    evaluation = hotcoco.LVISEval(lvis_gt, results, "bbox")
    assert not isinstance(evaluation, hotcoco.LVISEval), "hotcoco's LVISEval is a class now: subclass it"
    capfd.readouterr()
    evaluation.run()
    assert "AP50 = 1.000" in capfd.readouterr().out, "hotcoco's run() no longer prints: print_results suffices"
    assert evaluation.get_results()["AP"] == pytest.approx(1.0)
