"""tools/train_net.py's training and evaluation (efl.engine.defaults) with train.ema (YOLOX-IP):
training saves the EMA in its checkpoints and evaluates with it; --eval-only evaluates a
checkpoint's EMA weights, not its raw model weights."""
import types
from pathlib import Path

import torch
from detectron2.config import LazyConfig

from efl.engine import AtomicDetectionCheckpointer, defaults
from efl.engine.ema import ModelEMA

REPO = Path(__file__).resolve().parents[2]


def _nano_config(output_dir):
    """The YOLOX-IP nano demo config on the tiny synthetic set, 3 iterations, EMA on."""
    cfg = LazyConfig.load(str(REPO / "configs/demo/efl_yolox_ip_nano_synthetic.py"))
    cfg.dataloader.train.dataset.names = "synthetic_lt_tiny_train"
    cfg.dataloader.test.dataset.names = "synthetic_lt_tiny_val"
    cfg.dataloader.train.total_batch_size = 2
    cfg.dataloader.train.num_workers = 0
    cfg.model.num_classes = 12
    cfg.train.max_iter, cfg.train.epoch_iters = 3, 1
    cfg.train.no_aug_epochs = 0
    cfg.train.ema = dict(enabled=True, decay=0.5, tau=1.0)
    cfg.train.output_dir = str(output_dir)
    cfg.train.checkpointer.period = 1000
    cfg.train.eval_period = 0
    cfg.train.init_checkpoint = ""
    cfg.train.init_checkpoint_partial = False
    return cfg


def _probe(model):
    """A weight that differs between a model and its EMA: the first conv of the backbone."""
    model = getattr(model, "module", model)
    return model.backbone.bottom_up.stem.conv_block.conv.weight.detach().clone()


def test_training_saves_the_ema_and_evaluates_with_it(tmp_path, monkeypatch, one_thread):
    cfg = _nano_config(tmp_path)
    seen = {}

    def fake_test(cfg, model, ground_truth=()):
        seen["weights"] = _probe(model)
        return {"bbox": {"AP": 1.0}}

    monkeypatch.setattr(defaults, "do_test", fake_test)
    monkeypatch.setattr(defaults, "has_evaluator", lambda cfg: True)
    defaults.do_train(types.SimpleNamespace(resume=False), cfg)

    state = torch.load(tmp_path / "model_final.pth", map_location="cpu", weights_only=False)
    assert "ema" in state
    key = "backbone.bottom_up.stem.conv_block.conv.weight"
    ema_weight, raw_weight = state["ema"]["shadow"][key], state["model"][key]
    assert not torch.equal(ema_weight, raw_weight)
    # the final evaluation saw the EMA's weights, not the trained model's
    torch.testing.assert_close(seen["weights"], ema_weight)


def test_eval_only_evaluates_the_checkpoints_ema_weights(tmp_path, monkeypatch, one_thread):
    cfg = _nano_config(tmp_path)
    from detectron2.config import instantiate

    model = instantiate(cfg.model)
    ema = ModelEMA(model, decay=0.5, tau=1.0)
    with torch.no_grad():
        for name in ema.names:
            if ema.shadow[name].is_floating_point():
                ema.shadow[name] += 1.0
    ema.valid = True
    AtomicDetectionCheckpointer(model, str(tmp_path), ema=ema).save("with_ema")
    seen = {}

    def fake_test(cfg, model, ground_truth=()):
        seen["weights"] = _probe(model)
        return {"bbox": {"AP": 1.0}}

    monkeypatch.setattr(defaults, "do_test", fake_test)
    defaults.do_eval(cfg, str(tmp_path / "with_ema.pth"))
    torch.testing.assert_close(seen["weights"], _probe(model) + 1.0)
