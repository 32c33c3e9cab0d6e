"""Two gloo processes on CPU hold identical statistics, equal to one process run on the union of
their batches (the all-reduce sums the per-call gradient sums over processes)."""
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from efl.losses import EqualizedFocalLoss, EqualizedQualityFocalLoss

from .test_statistics import NUM_CLASSES, batch

WORLD_SIZE = 2
NORMALIZERS = [12.0, 30.0, 7.5]


def run_rank(rank, init_file, out_dir):
    import efl  # noqa: F401  (the spawned child needs the compatibility fixes too)

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        losses = {"efl": EqualizedFocalLoss(NUM_CLASSES), "eqfl": EqualizedQualityFocalLoss(NUM_CLASSES)}
        for seed, normalizer in enumerate(NORMALIZERS):
            logits, labels, scores = batch(seed)
            half = logits.shape[0] // WORLD_SIZE
            rows = slice(rank * half, (rank + 1) * half)
            x = logits[rows].clone().requires_grad_()
            losses["efl"](x, labels[rows], normalizer).backward()
            losses["eqfl"](x, labels[rows], scores[rows], normalizer).backward()
        torch.save({k: v.state_dict() for k, v in losses.items()}, os.path.join(out_dir, f"rank{rank}.pth"))
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_hold_identical_statistics_equal_to_one_process_on_the_union(tmp_path):
    mp.spawn(run_rank, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pth") for r in range(WORLD_SIZE)]

    single = {"efl": EqualizedFocalLoss(NUM_CLASSES), "eqfl": EqualizedQualityFocalLoss(NUM_CLASSES)}
    for seed, normalizer in enumerate(NORMALIZERS):
        logits, labels, scores = batch(seed)
        single["efl"](logits, labels, normalizer)
        single["eqfl"](logits, labels, scores, normalizer)

    for name, loss in single.items():
        for key, expected in loss.state_dict().items():
            assert torch.equal(ranks[0][name][key], ranks[1][name][key]), (name, key)
            torch.testing.assert_close(ranks[0][name][key], expected, rtol=1e-5, atol=1e-10)
        assert (loss.pos_neg < 1).any()  # the statistics really moved


def run_rank_with_bad_labels_on_rank_0(rank, init_file, out_dir):
    import efl  # noqa: F401

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        loss = EqualizedFocalLoss(NUM_CLASSES)
        logits, labels, _ = batch(0)
        if rank == 0:
            labels[5] = NUM_CLASSES + 3
        try:
            loss(logits, labels, 4.0)
            outcome = "returned"
        except (ValueError, FloatingPointError) as e:
            outcome = f"{type(e).__name__}: {e}"
        with open(os.path.join(out_dir, f"rank{rank}.txt"), "w") as f:
            f.write(outcome)
    finally:
        dist.destroy_process_group()


def test_bad_input_on_one_process_makes_every_process_raise(tmp_path):
    # Otherwise the healthy process would go on to its next all-reduce and wait forever.
    mp.spawn(run_rank_with_bad_labels_on_rank_0, args=(str(tmp_path / "init"), str(tmp_path)),
             nprocs=WORLD_SIZE, join=True)
    rank0, rank1 = ((tmp_path / f"rank{r}.txt").read_text() for r in range(WORLD_SIZE))
    assert rank0.startswith("ValueError") and "labels must lie in" in rank0
    assert rank1.startswith("FloatingPointError") and "another process" in rank1
