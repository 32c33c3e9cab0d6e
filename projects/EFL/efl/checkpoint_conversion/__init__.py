"""Load the reference's (EOD / United-Perception) released checkpoints into this project's models:
file layouts, family and size detection, key renaming, and the check against the matching config
(docs/eod_checkpoints.md). ``tools/convert_eod_checkpoint.py`` is the command line."""
from .convert import (
    EODConversion,
    check_against_model,
    convert_eod_checkpoint,
    convert_eod_state_dict,
    detect_eod_model,
    load_eod_file,
    matching_model,
)
from .eod_layouts import EODCheckpointError, drop_stem_aliases, extract_state_dict
from .key_rules import KeyRule, RuleSet
from .model_info import EODModelInfo

__all__ = [
    "EODCheckpointError",
    "EODConversion",
    "EODModelInfo",
    "KeyRule",
    "RuleSet",
    "check_against_model",
    "convert_eod_checkpoint",
    "convert_eod_state_dict",
    "detect_eod_model",
    "drop_stem_aliases",
    "extract_state_dict",
    "load_eod_file",
    "matching_model",
]
