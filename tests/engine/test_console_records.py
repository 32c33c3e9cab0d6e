"""Records that belong in log.txt, not on the console: Detectron2's weight-matching table (printed
when torchvision-converted weights load) and its per-class instance table."""
import logging

from detectron2.checkpoint.c2_model_loading import align_and_update_state_dicts

import torch
from efl.engine.run_setup import _ConsoleFilter


def test_the_weight_matching_table_goes_to_the_log_file_only(caplog):
    model = {"backbone.res2.0.conv1.weight": torch.zeros(4, 4, 1, 1), "backbone.stem.conv1.weight": torch.zeros(4, 3, 7, 7)}
    checkpoint = {"res2.0.conv1.weight": torch.ones(4, 4, 1, 1), "stem.conv1.weight": torch.ones(4, 3, 7, 7)}
    with caplog.at_level(logging.INFO, logger="detectron2"):
        align_and_update_state_dicts(model, checkpoint, c2_conversion=False)
    (table,) = [r for r in caplog.records if "Names in Checkpoint" in r.getMessage()]  # Detectron2 logs it
    console = _ConsoleFilter()
    assert not console.filter(table)
    other = logging.LogRecord("detectron2", logging.INFO, __file__, 1, "iter: 19  total_loss: 1.0", None, None)
    assert console.filter(other)
