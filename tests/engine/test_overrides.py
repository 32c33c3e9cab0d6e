"""key=value overrides (efl.engine.overrides) on the tiny test config: a key the config does not
have is an error naming the closest existing one; real keys and arguments of LazyCall'd callables
are applied."""
import pytest
from detectron2.config import LazyConfig, instantiate

from efl.engine.overrides import OverrideError, apply_overrides

from .tiny_lvis import write_tiny_lvis

CONFIG = "tests/engine/tiny_config.py"


@pytest.fixture(scope="module")
def load_cfg(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_lvis")
    write_tiny_lvis(str(root))
    mp = pytest.MonkeyPatch()
    mp.setenv("EFL_TEST_TINY_LVIS", str(root))
    mp.chdir(__file__.rsplit("/tests/", 1)[0])
    yield lambda: LazyConfig.load(CONFIG)
    mp.undo()


def test_mistyped_key_is_an_error_naming_the_closest_key(load_cfg):
    with pytest.raises(OverrideError) as info:
        apply_overrides(load_cfg(), ["train.max_iters=3"])
    message = str(info.value)
    assert "train.max_iters" in message and "did you mean 'train.max_iter'" in message


def test_mistyped_parent_is_an_error_naming_the_closest_parent(load_cfg):
    with pytest.raises(OverrideError, match=r"no parent 'dataloader.trian'.*'dataloader.train'"):
        apply_overrides(load_cfg(), ["dataloader.trian.total_batch_size=4"])


def test_mistyped_argument_of_a_lazycall_node_is_an_error(load_cfg):
    # model is L(ImprovedRetinaNet)(...): its parameters are the keys it may take
    with pytest.raises(OverrideError, match="did you mean 'model.num_classes'"):
        apply_overrides(load_cfg(), ["model.num_clases=3"])


def test_existing_keys_are_applied(load_cfg):
    cfg = apply_overrides(load_cfg(), ["train.max_iter=3", "optimizer.lr=0.5",
                                       "model.head.conv_dims=[16]"])
    assert cfg.train.max_iter == 3 and cfg.optimizer.lr == 0.5 and list(cfg.model.head.conv_dims) == [16]


def test_unset_parameter_of_a_lazycall_target_is_accepted_and_reaches_the_object(load_cfg):
    # DatasetMapper takes use_instance_mask, which the tiny config does not set
    cfg = load_cfg()
    assert "use_instance_mask" not in cfg.dataloader.test.mapper
    cfg = apply_overrides(cfg, ["dataloader.test.mapper.use_instance_mask=True"])
    assert instantiate(cfg.dataloader.test.mapper).use_instance_mask is True


def test_plus_adds_a_new_key_on_purpose_but_needs_its_parent(load_cfg):
    cfg = apply_overrides(load_cfg(), ["+train.note=hello"])
    assert cfg.train.note == "hello"
    with pytest.raises(OverrideError, match="no parent 'trian'"):
        apply_overrides(load_cfg(), ["+trian.note=hello"])


def test_list_items_are_addressed_by_index_in_range(load_cfg):
    cfg = apply_overrides(load_cfg(), ["model.head.conv_dims.0=8"])
    assert list(cfg.model.head.conv_dims) == [8]
    with pytest.raises(OverrideError, match="list of 1 items"):
        apply_overrides(load_cfg(), ["model.head.conv_dims.3=8"])


def test_a_key_below_a_plain_value_is_an_error(load_cfg):
    with pytest.raises(OverrideError, match="'train.max_iter' is a value"):
        apply_overrides(load_cfg(), ["train.max_iter.x=1"])


def test_a_flag_among_the_overrides_is_an_error_saying_where_flags_go(load_cfg):
    with pytest.raises(OverrideError, match="overrides are path.key=value and come after the flags"):
        apply_overrides(load_cfg(), ["train.max_iter=3", "--num-gpus", "2"])


def test_key_whose_value_is_missing_can_be_set(load_cfg):
    # a config may leave a value for the user to give ("???"): `key in cfg` is False for it
    from omegaconf import MISSING, OmegaConf

    cfg = load_cfg()
    cfg.dataset = OmegaConf.create({"train_json": MISSING})
    apply_overrides(cfg, ["dataset.train_json=/data/train.json"])
    assert cfg.dataset.train_json == "/data/train.json"
    with pytest.raises(OverrideError, match="did you mean 'dataset.train_json'"):
        apply_overrides(cfg, ["dataset.train_jsn=/data/train.json"])


@pytest.mark.parametrize("override, message", [
    ("optimizer.lr=abc", "override 'optimizer.lr=abc': optimizer.lr takes a float or an int (the "
                         "config has 0.01), got the string 'abc'"),
    ("train.max_iter=1.5", "override 'train.max_iter=1.5': train.max_iter takes an int (the config "
                           "has 12), got the float 1.5"),
    ("train.max_iter=abc", "train.max_iter takes an int (the config has 12), got the string 'abc'"),
    ("train.max_iter='20'", "train.max_iter takes an int (the config has 12), got the string '20'"),
    ("train.amp.enabled=1", "train.amp.enabled takes a bool, true or false (the config has False), "
                            "got the int 1"),
])
def test_a_value_of_another_type_than_the_configs_is_an_error_naming_key_value_and_type(
        load_cfg, override, message):
    with pytest.raises(OverrideError) as info:
        apply_overrides(load_cfg(), [override])
    assert message in str(info.value)


def test_values_that_fit_the_configs_types_are_applied(load_cfg):
    cfg = apply_overrides(load_cfg(), [
        "optimizer.lr=1",  # an int is a fine float
        "optimizer.momentum=0.8",
        "train.max_iter=20",
        "train.amp.enabled=true",
        "train.output_dir=/tmp/x",
        "dataloader.evaluator=null",  # null everywhere (here: no evaluation)
        "train.seed=${train.max_iter}",  # an interpolation: its type is known when resolved
    ])
    assert (cfg.optimizer.lr, cfg.optimizer.momentum, cfg.train.max_iter) == (1, 0.8, 20)
    assert cfg.train.amp.enabled is True and cfg.dataloader.evaluator is None
    assert cfg.train.seed == 20
