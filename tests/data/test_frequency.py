"""LVIS frequency letters and groups of a dataset's classes (efl.data.frequency)."""
import json

import pytest

from detectron2.data import Metadata, MetadataCatalog
from efl.data.frequency import LVIS_V1_NUM_CLASSES, class_frequency_groups, class_frequency_letters


def _as_lists(groups):
    return {k: v.tolist() for k, v in groups.items()}


def test_frequency_groups_come_from_the_metadata_letters():
    metadata = Metadata(name="m").set(class_frequency=["r", "f", "c", "r", "f"])
    assert _as_lists(class_frequency_groups(metadata, 5)) == {"rare": [0, 3], "common": [2], "frequent": [1, 4]}


def test_frequency_groups_fall_back_to_the_lvis_json_and_to_all_classes(tmp_path):
    json_file = tmp_path / "lvis.json"
    categories = [{"id": 2, "frequency": "f"}, {"id": 1, "frequency": "r"}, {"id": 3, "frequency": "c"}]
    json_file.write_text(json.dumps({"categories": categories}))
    metadata = Metadata(name="j").set(json_file=str(json_file))
    # contiguous ids follow the sorted LVIS ids
    assert class_frequency_letters(metadata) == (["r", "f", "c"], str(json_file))
    assert _as_lists(class_frequency_groups(metadata, 3)) == {"rare": [0], "common": [2], "frequent": [1]}
    assert class_frequency_groups(Metadata(name="none"), 4)["all"].tolist() == [0, 1, 2, 3]
    assert class_frequency_groups(None, 2)["all"].tolist() == [0, 1]


def test_a_json_category_without_frequency_is_an_error_naming_the_file_and_id(tmp_path):
    json_file = tmp_path / "no_freq.json"
    json_file.write_text(json.dumps({"categories": [{"id": 1, "frequency": "r"}, {"id": 7}]}))
    with pytest.raises(ValueError, match=r"no_freq.json: categories \[7\] have no 'frequency'"):
        class_frequency_letters(Metadata(name="nf").set(json_file=str(json_file)))


def test_frequency_groups_reject_a_class_count_mismatch_and_unknown_letters():
    with pytest.raises(ValueError, match="3 class frequencies but the loss has 4"):
        class_frequency_groups(Metadata(name="bad").set(class_frequency=["r", "c", "f"]), 4)
    with pytest.raises(ValueError, match="'x'.*dataset 'bad2'"):
        class_frequency_groups(Metadata(name="bad2").set(class_frequency=["r", "x"]), 2)


def test_frequency_groups_of_detectron2_builtin_lvis_v1_match_the_lvis_paper_counts():
    # Detectron2's lvis_v1_train metadata holds only thing_classes: the letters come from its table.
    metadata = MetadataCatalog.get("lvis_v1_train")
    assert "class_frequency" not in metadata.as_dict()
    groups = class_frequency_groups(metadata, LVIS_V1_NUM_CLASSES)
    # LVIS v1 (Gupta et al.): 1203 categories, 337 rare, 461 common and 405 frequent.
    assert LVIS_V1_NUM_CLASSES == 1203
    assert {k: v.numel() for k, v in groups.items()} == {"rare": 337, "common": 461, "frequent": 405}


def test_a_1203_class_set_with_other_names_does_not_borrow_lvis_letters():
    metadata = Metadata(name="other").set(thing_classes=[f"c{i}" for i in range(LVIS_V1_NUM_CLASSES)])
    assert class_frequency_letters(metadata) == (None, None)
