"""efl.data.registration: the one registration helper of every efl.data dataset, and the loader of
a dataset under an environment-variable root."""
import pytest

from detectron2.data import DatasetCatalog, MetadataCatalog

from efl.data.registration import register_dataset, root_env_loader, root_from_env


def test_registering_a_name_again_replaces_loader_and_metadata():
    register_dataset("efl_test_registered", lambda: [{"image_id": 1}], json_file="a.json", thing_classes=["x"])
    # Detectron2's catalogs alone refuse a second registration and a changed metadata value.
    with pytest.raises(AssertionError):
        DatasetCatalog.register("efl_test_registered", list)
    with pytest.raises(AssertionError):
        MetadataCatalog.get("efl_test_registered").set(json_file="b.json")
    register_dataset("efl_test_registered", lambda: [{"image_id": 2}], json_file="b.json")
    assert DatasetCatalog.get("efl_test_registered") == [{"image_id": 2}]
    meta = MetadataCatalog.get("efl_test_registered").as_dict()
    assert meta["json_file"] == "b.json" and "thing_classes" not in meta
    DatasetCatalog.remove("efl_test_registered")
    MetadataCatalog.remove("efl_test_registered")


def test_root_comes_from_the_argument_else_the_environment(monkeypatch):
    monkeypatch.setenv("EFL_TEST_ROOT", "/from/env")
    assert root_from_env("/given", "EFL_TEST_ROOT") == ("/given", "/given")
    assert root_from_env(None, "EFL_TEST_ROOT") == ("/from/env", "/from/env")
    monkeypatch.delenv("EFL_TEST_ROOT")
    assert root_from_env(None, "EFL_TEST_ROOT") == (None, "$EFL_TEST_ROOT")


def test_env_root_loader_names_the_variable_then_the_missing_file_then_loads(tmp_path):
    def loader(root, json_file):
        return root_env_loader("mine", lambda: ["dicts"], root=root, env_var="EFL_TEST_ROOT", json_file=json_file,
                               contents="test root (holding a.json)", register_call="register_mine(root)",
                               json_hint="; write it with make_a.py")

    with pytest.raises(FileNotFoundError, match=r"^mine: set the environment variable EFL_TEST_ROOT to the test "
                                                r"root \(holding a.json\), or call register_mine\(root\)$"):
        loader(None, "$EFL_TEST_ROOT/a.json")()
    json_file = tmp_path / "a.json"
    with pytest.raises(FileNotFoundError, match=f"^mine: {json_file} does not exist \\(EFL_TEST_ROOT={tmp_path}\\); "
                                                "write it with make_a.py$"):
        loader(str(tmp_path), str(json_file))()
    json_file.write_text("{}")
    assert loader(str(tmp_path), str(json_file))() == ["dicts"]


def test_lvis_training_split_is_named_by_the_registration_not_guessed_from_the_file_name(monkeypatch, tmp_path):
    from efl.data import LVIS_ROOT_ENV, register_lvis_v1_efl
    from tests.data.test_lvis_registration import _fake_lvis_root

    _fake_lvis_root(str(tmp_path))
    monkeypatch.setenv(LVIS_ROOT_ENV, str(tmp_path))
    # the val file (one image, with category 1203) as a training split, the train file as a test split
    names = {"efl_test_counted": "annotations/lvis_v1_val.json", "efl_test_not_counted": "annotations/lvis_v1_train.json"}
    register_lvis_v1_efl(names=names, train_names=["efl_test_counted"])
    DatasetCatalog.get("efl_test_counted")
    DatasetCatalog.get("efl_test_not_counted")
    counts = {c["id"]: c["image_count"] for c in MetadataCatalog.get("efl_test_counted").class_image_count}
    assert counts[1203] == 1 and counts[1] == 0
    assert "class_image_count" not in MetadataCatalog.get("efl_test_not_counted").as_dict()
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
