"""BufferSyncHook in two gloo processes: before a checkpoint or an evaluation every process holds
the BN statistics averaged over processes and exactly rank 0's buffers and EMA."""
import copy
import types

import efl  # noqa: F401  (before detectron2: spawned children import this module without conftest)
import torch
import torch.multiprocessing as mp
from torch import nn

from efl.engine.buffer_sync import BufferSyncHook
from efl.engine.ema import EMAHook, ModelEMA


class _Net(nn.Sequential):
    def __init__(self):
        torch.manual_seed(0)
        super().__init__(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
        # a buffer that is not a BN statistic: rank 0's value wins
        self.register_buffer("other", torch.zeros(2))


def _sync_on_rank(rank, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        model = _Net()
        ema = ModelEMA(model, decay=0.5, tau=1e-9)  # d(0) = 0, d(t > 0) = 0.5
        ema_hook, sync_hook = EMAHook(ema, model), BufferSyncHook(model, ema=ema, periods=(4, None))
        bn = model[1]
        states = {}

        def step(iteration, running_mean):
            # each process's BN saw other images
            with torch.no_grad():
                bn.running_mean.fill_(running_mean)
                bn.running_var.fill_(1.0 + 2 * rank)
                model.other.fill_(7.0 + rank)
            for hook in (ema_hook, sync_hook):
                hook.trainer = types.SimpleNamespace(iter=iteration, max_iter=6)
                hook.after_step()
            return {"model": copy.deepcopy(model.state_dict()), "ema": copy.deepcopy(ema.shadow)}

        states["0"] = step(0, float(rank))  # ema copies: r
        states["2"] = step(2, 10.0 + rank)  # iteration 3 is not a period: nothing synchronized
        states["3"] = step(3, 20.0 + rank)  # checkpoint / evaluation after iteration 4
        states["5"] = step(5, 30.0 + rank)  # the last iteration
        torch.save(states, f"{out_dir}/rank{rank}.pth")
    finally:
        dist.destroy_process_group()


def test_bn_statistics_are_averaged_and_buffers_are_rank_0s_before_checkpoints_and_evaluations(tmp_path):
    mp.spawn(_sync_on_rank, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pth") for r in range(2)]
    weights = _Net().state_dict()["0.weight"]
    for r, states in enumerate(ranks):
        # between periods each process keeps its own: ema = 0.5 r + 0.5 (10 + r)
        assert torch.equal(states["2"]["model"]["1.running_mean"], torch.full((4,), 10.0 + r))
        assert torch.equal(states["2"]["ema"]["1.running_mean"], torch.full((4,), 5.0 + r))
        assert torch.equal(states["2"]["model"]["other"], torch.full((2,), 7.0 + r))
        # after iteration 3 (period 4): means over processes; ema = mean(0.5 (5 + r) + 0.5 (20 + r))
        assert torch.equal(states["3"]["model"]["1.running_mean"], torch.full((4,), 20.5))
        assert torch.equal(states["3"]["ema"]["1.running_mean"], torch.full((4,), 13.0))
        assert torch.equal(states["3"]["model"]["1.running_var"], torch.full((4,), 2.0))
        assert torch.equal(states["3"]["model"]["other"], torch.full((2,), 7.0))
        # the last iteration: ema = mean(0.5 * 13 + 0.5 (30 + r))
        assert torch.equal(states["5"]["model"]["1.running_mean"], torch.full((4,), 30.5))
        assert torch.equal(states["5"]["ema"]["1.running_mean"], torch.full((4,), 21.75))
        # the parameters, identical under DDP, are left alone
        assert torch.equal(states["5"]["model"]["0.weight"], weights)
    for key in ("3", "5"):
        for part in ("model", "ema"):
            a, b = (states[key][part] for states in ranks)
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) for k in a), f"{part} after iteration {key}"
