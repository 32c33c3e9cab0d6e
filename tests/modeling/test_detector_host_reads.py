"""A training step of the improved-baseline detector reads values back to the host only where a
size depends on the data: twice per image in ATSS (its input check, the ground truths large enough
to match), once for the positive anchors, once for the valid anchors, once in the loss
(tests/losses/test_host_syncs.py). Counted with the CPU stand-in of tests/host_reads.py from the
head's outputs to the loss dict."""
import pytest
import torch

import efl.modeling.box_losses as box_losses
from detectron2.utils.events import EventStorage
from tests.host_reads import count_host_reads
from tests.modeling.test_improved_retinanet import NUM_CLASSES, improved_model, random_batch


def _count_training_step(model, batch, monkeypatch):
    """Host reads of ``forward_training`` (labelling, losses), and how many of them were inside
    fvcore's ``giou_loss`` (its own input asserts, a library's choice), left out of the list."""
    reads = count_host_reads(monkeypatch)
    in_giou = []
    giou_loss = box_losses.giou_loss

    def counted_giou_loss(*args, **kwargs):
        before = len(reads)
        result = giou_loss(*args, **kwargs)
        in_giou.append(len(reads) - before)
        del reads[before:]
        return result

    monkeypatch.setattr(box_losses, "giou_loss", counted_giou_loss)
    forward_training = model.forward_training

    def counted(*args):
        reads.clear()
        in_giou.clear()
        return forward_training(*args)

    monkeypatch.setattr(model, "forward_training", counted)
    model(batch)
    return list(reads), sum(in_giou)


@pytest.mark.parametrize("num_images", [2, 3])
def test_training_step_reads_twice_per_image_and_three_times_per_batch(num_images, monkeypatch):
    model = improved_model().train()
    with EventStorage():
        reads, in_giou = _count_training_step(model, random_batch(num_images=num_images, seed=1), monkeypatch)
    assert in_giou > 0  # the GIoU term ran
    # per image, ATSS's isfinite(gt boxes) and kept ground truths; the positives' and the valid
    # anchors' indices; the loss
    expected = ["__bool__", "nonzero"] * num_images + ["nonzero", "nonzero", "tolist"]
    assert sorted(reads) == sorted(expected), reads


def test_num_pos_anchors_is_logged_one_iteration_late_without_a_read_in_the_step(monkeypatch):
    model = improved_model().train()
    positives_per_image = []
    losses = model.losses

    def recording_losses(anchors, pred_logits, gt_labels, *args):
        labels = torch.stack(gt_labels)
        positives_per_image.append(((labels >= 0) & (labels < NUM_CLASSES)).sum().item() / len(gt_labels))
        return losses(anchors, pred_logits, gt_labels, *args)

    monkeypatch.setattr(model, "losses", recording_losses)
    with EventStorage() as storage:
        model(random_batch(seed=2))
        assert "num_pos_anchors" not in storage.histories()
        storage.step()
        model(random_batch(seed=3))
        history = storage.history("num_pos_anchors").values()
    assert positives_per_image[0] > 0
    assert history == [(pytest.approx(positives_per_image[0]), 1)]
