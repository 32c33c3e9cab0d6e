"""efl.compat.evaluation: each reach into detectron2's LVIS evaluation works, and each is still
needed by the installed detectron2."""
import inspect
import sys
import types

import detectron2.evaluation.lvis_evaluation as d2_lvis_evaluation
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


def test_lvis_module_as_gives_the_module_inside_the_block_and_restores_the_previous_one():
    class FakeEval:
        def print_results(self):
            raise AssertionError("the library's summary print must not run")

    fake = types.SimpleNamespace(LVIS="fake LVIS", LVISEval=FakeEval, LVISResults="fake LVISResults")
    before = sys.modules.get("lvis")
    with lvis_module_as(fake):
        from lvis import LVIS, LVISEval, LVISResults

        assert (LVIS, LVISResults) == ("fake LVIS", "fake LVISResults")
        # the module's LVISEval, without its summary print (Detectron2 logs the same table after it)
        assert issubclass(LVISEval, FakeEval) and LVISEval.__name__ == "FakeEval"
        LVISEval().print_results()
    assert sys.modules.get("lvis") is before
