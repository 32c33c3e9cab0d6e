"""The `train` schema (configs/common/train.py) is the one declaration of the training options:
every key the engine reads is in it, `--help` lists each with its comment, and a config that does
not compose it gets its values under the keys it lacks (overrides of those keys included)."""
import re
import subprocess
import sys
import types

from detectron2.config import LazyConfig

from efl.engine import defaults

from tests.scripts import REPO, load_script

SCHEMA = LazyConfig.load(str(REPO / "configs/common/train.py")).train

# A Detectron2-style config with a `train` of its own, not composed from configs/common/train.py.
OWN_TRAIN_CONFIG = '''
from detectron2.config import LazyCall as L
from torch.nn import Linear
model = L(Linear)(in_features=2, out_features=1)
train = dict(output_dir="./out", max_iter=7, device="cpu", init_checkpoint="")
'''


def test_every_train_key_the_engine_reads_is_declared_in_the_schema():
    sources = [REPO / "projects/EFL/efl/engine/defaults.py", REPO / "tools/train_net.py"]
    read = set()
    for path in sources:
        read |= set(re.findall(r"cfg\.train\.(\w+)", path.read_text()))
    assert read and read <= set(SCHEMA), sorted(read - set(SCHEMA))


def test_help_lists_every_schema_key_with_its_default_and_comment():
    out = subprocess.run([sys.executable, str(REPO / "tools/train_net.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    for key in SCHEMA:
        match = re.search(rf"^  train\.{key}=.*\n      (\S.*)$", out, re.MULTILINE)
        assert match, f"train.{key} is not in --help"
    assert "train.cudnn_benchmark=False\n      True: cuDNN benchmark mode" in out


def test_a_config_with_its_own_train_gets_the_schemas_defaults_and_accepts_their_overrides(tmp_path):
    path = tmp_path / "own_train.py"
    path.write_text(OWN_TRAIN_CONFIG)
    args = types.SimpleNamespace(config_file=str(path),
                                 opts=["train.cudnn_benchmark=True", "train.ema.enabled=True"])
    cfg = defaults.load_config(args)
    # the config's own values stay; the keys it lacks take the schema's
    assert (cfg.train.max_iter, cfg.train.device, cfg.train.output_dir) == (7, "cpu", "./out")
    assert cfg.train.cudnn_benchmark is True and cfg.train.ema.enabled is True
    assert cfg.train.ema.decay == SCHEMA.ema.decay and cfg.train.no_aug_epochs == SCHEMA.no_aug_epochs
    assert cfg.train.eval_invalid_boxes == SCHEMA.eval_invalid_boxes


def test_train_net_reads_its_config_through_the_schema(tmp_path):
    path = tmp_path / "own_train.py"
    path.write_text(OWN_TRAIN_CONFIG)
    train_net = load_script("tools/train_net.py")
    args = train_net.build_parser().parse_args(["--config-file", str(path), "train.seed=3"])
    cfg = train_net.load_config(args)
    assert cfg.train.seed == 3 and cfg.train.log_period == SCHEMA.log_period
