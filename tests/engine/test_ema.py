"""Model EMA: the decay rule, the update against a hand recursion, the weight swap for evaluation,
and checkpoint / resume through Detectron2's trainer and checkpointer."""
import copy
import io
import math

import efl  # noqa: F401  (before detectron2: spawned children import this module without conftest)
import pytest
import torch
from detectron2.engine import SimpleTrainer, hooks
from omegaconf import OmegaConf
from torch import nn

from efl.engine import AtomicDetectionCheckpointer
from efl.engine.defaults import build_ema_hooks, with_train_schema
from efl.engine.ema import EMAHook, ModelEMA


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))


def _float_state(model):
    return {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}


def test_decay_follows_the_exponential_warmup_rule():
    ema = ModelEMA(_tiny_model(), decay=0.9998, tau=2000)
    assert ema.decay_at(0) == 0.0  # the first update copies the weights
    assert ema.decay_at(2000) == pytest.approx(0.9998 * (1 - math.exp(-1)))  # 0.631994...
    assert ema.decay_at(2000) == pytest.approx(0.6319941, abs=1e-7)
    assert ema.decay_at(100_000) == pytest.approx(0.9998, abs=1e-12)


def test_ema_equals_a_hand_recursion_over_three_steps_for_params_and_buffers():
    model = _tiny_model()
    ema = ModelEMA(model, decay=0.9, tau=2.0)
    expected = None
    for t in range(3):
        with torch.no_grad():  # a "training step": new weights and BN statistics
            for v in model.state_dict().values():
                if v.is_floating_point():
                    v.add_(torch.randn_like(v))
        model[1].num_batches_tracked += 1
        ema.update(model, t)
        d = 0.9 * (1 - math.exp(-t / 2.0))
        current = _float_state(model)
        expected = current if expected is None else {k: d * expected[k] + (1 - d) * current[k] for k in current}
    assert set(ema.shadow) == set(expected)  # every float entry, BN running stats included
    assert "1.running_mean" in ema.shadow and "1.num_batches_tracked" not in ema.shadow
    for k in expected:
        torch.testing.assert_close(ema.shadow[k], expected[k], rtol=1e-6, atol=1e-7, msg=k)


def test_apply_to_swaps_the_ema_weights_in_and_restores_the_model_bit_exactly():
    model = _tiny_model()
    ema = ModelEMA(model)
    ema.update(model, 0)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.37).add_(0.1)
    own = {k: v.clone() for k, v in model.state_dict().items()}
    with ema.apply_to(model):
        for k, v in ema.shadow.items():
            assert torch.equal(model.state_dict()[k], v)
        assert not torch.equal(model[0].weight, own["0.weight"])
    for k, v in model.state_dict().items():
        assert torch.equal(v, own[k]), k
    assert all(p.requires_grad for p in model.parameters())


def test_apply_to_before_any_update_or_load_keeps_the_model_weights():
    model = _tiny_model()
    own = _float_state(model)
    with ModelEMA(model).apply_to(model):
        for k, v in _float_state(model).items():
            assert torch.equal(v, own[k])


def test_state_dict_round_trip_continues_the_average_exactly():
    model = _tiny_model()
    steps = [_tiny_model(seed) for seed in range(1, 6)]  # the weights after each of 5 steps
    straight = ModelEMA(model)
    for t, m in enumerate(steps):
        straight.update(m, t)

    first = ModelEMA(model)
    for t, m in enumerate(steps[:3]):
        first.update(m, t)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = ModelEMA(model)
    resumed.load_state_dict(torch.load(buffer))
    assert resumed.last_iter == 2
    for t, m in enumerate(steps[3:], start=3):
        resumed.update(m, t)
    for k in straight.shadow:
        assert torch.equal(resumed.shadow[k], straight.shadow[k]), k


def test_a_loaded_average_takes_the_device_and_dtype_of_the_model_tensors():
    # checkpoints are read onto the CPU; the average must live where the model does
    saved = ModelEMA(_tiny_model())
    saved.update(_tiny_model(3), 0)
    model = _tiny_model().double()
    ema = ModelEMA(model)
    ema.load_state_dict(saved.state_dict())
    for k, v in saved.shadow.items():
        assert ema.shadow[k].dtype == torch.float64
        torch.testing.assert_close(ema.shadow[k], v.double(), rtol=0, atol=0)
    ema.update(model, 1)  # and keeps updating with the model's tensors


def test_load_refuses_a_state_that_misses_model_entries():
    model = _tiny_model()
    ema = ModelEMA(model)
    ema.update(model, 0)
    state = ema.state_dict()
    del state["shadow"]["0.weight"]
    with pytest.raises(KeyError, match="0.weight"):
        ModelEMA(model).load_state_dict(state)


# ----------------------------------------------------------------------------------------------
class _Regression(nn.Module):
    """A model that trains deterministically on fixed batches (SimpleTrainer's model contract)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))

    def forward(self, batch):
        x, y = batch
        return {"loss": ((self.net(x) - y) ** 2).mean()}


def _batches():
    g = torch.Generator().manual_seed(1)
    while True:
        yield torch.randn(8, 3, generator=g), torch.randn(8, 1, generator=g)


def _cfg():
    return OmegaConf.create({"train": {"ema": {"enabled": True, "decay": 0.9998, "tau": 2.0}}})


def _run(output_dir, *, start, stop, resume, period):
    """Train iterations [start, stop) the way tools/train_net.py does, with the EMA hooks."""
    output_dir.mkdir(parents=True, exist_ok=True)
    model = _Regression()
    data = _batches()
    for _ in range(start):  # the data stream continues where the first run left it
        next(data)
    trainer = SimpleTrainer(model, data, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    checkpointer = AtomicDetectionCheckpointer(model, str(output_dir), trainer=trainer)
    ema_hooks, evaluation_weights = build_ema_hooks(_cfg(), model, checkpointer)
    trainer.register_hooks([*ema_hooks, hooks.PeriodicCheckpointer(checkpointer, period)])
    checkpointer.resume_or_load("", resume=resume)
    trainer.train(trainer.iter + 1 if resume else 0, stop)
    return model, ema_hooks[0].ema, evaluation_weights, checkpointer


def test_resume_through_the_checkpointer_continues_the_ema_exactly(tmp_path):
    _, straight, _, _ = _run(tmp_path / "straight", start=0, stop=6, resume=False, period=100)
    _run(tmp_path / "split", start=0, stop=3, resume=False, period=3)  # saves model_0000002.pth
    _, resumed, _, _ = _run(tmp_path / "split", start=3, stop=6, resume=True, period=100)
    assert resumed.last_iter == straight.last_iter == 5
    for k in straight.shadow:
        torch.testing.assert_close(resumed.shadow[k], straight.shadow[k], rtol=0, atol=0, msg=k)


def test_eval_only_load_restores_the_ema_and_evaluation_uses_it(tmp_path):
    trained, ema, _, checkpointer = _run(tmp_path, start=0, stop=4, resume=False, period=2)
    checkpointer.save("model_final")
    fresh = _Regression()
    eval_checkpointer = AtomicDetectionCheckpointer(fresh, str(tmp_path))
    _, evaluation_weights = build_ema_hooks(_cfg(), fresh, eval_checkpointer)
    eval_checkpointer.load(str(tmp_path / "model_final.pth"))  # model + "ema"
    own = _float_state(fresh)
    with evaluation_weights():
        for k, v in ema.shadow.items():
            assert torch.equal(fresh.state_dict()[k], v), k
    for k, v in _float_state(fresh).items():
        assert torch.equal(v, own[k])
    assert torch.equal(own["net.0.weight"], trained.state_dict()["net.0.weight"])


def test_ema_hook_updates_with_the_trainer_iteration():
    model = _Regression()
    ema = ModelEMA(model, decay=0.5, tau=1.0)
    trainer = SimpleTrainer(model, _batches(), torch.optim.SGD(model.parameters(), lr=0.1))
    trainer.register_hooks([EMAHook(ema, model)])
    trainer.train(0, 2)
    assert ema.last_iter == 1


def test_disabled_or_absent_ema_gives_no_hooks_and_a_null_context(tmp_path):
    model = _Regression()
    checkpointer = AtomicDetectionCheckpointer(model, str(tmp_path))
    for cfg in (OmegaConf.create({"train": {}}), OmegaConf.create({"train": {"ema": {"enabled": False}}})):
        hooks_, evaluation_weights = build_ema_hooks(with_train_schema(cfg), model, checkpointer)
        assert hooks_ == []
        with evaluation_weights():
            pass
    assert "ema" not in checkpointer.checkpointables
