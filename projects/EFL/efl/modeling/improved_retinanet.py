"""The EFL "improved baseline": RetinaNet with ATSS, an IoU branch, IoU-weighted GIoU and EFL/EQFL
(EFL_SPEC.md §5). Only the steps that differ from Detectron2's RetinaNet are replaced; with
``anchor_assigner=None``, ``cls_loss=None``, a two-output head, a Detectron2 box loss and
``normalizer="ema"`` it computes exactly what ``detectron2.modeling.RetinaNet`` computes."""
from typing import List, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from fvcore.nn import sigmoid_focal_loss_jit
from torch import Tensor, nn

from detectron2.config import configurable
from detectron2.layers import cat
from detectron2.modeling import META_ARCH_REGISTRY, RetinaNet
from detectron2.modeling.box_regression import _dense_box_regression_loss
from detectron2.structures import Boxes, ImageList, Instances
from detectron2.utils import comm
from detectron2.utils.events import get_event_storage

from ..losses import EqualizedQualityFocalLoss
from .atss import ATSSAssigner
from .box_losses import aligned_iou, iou_weighted_giou_loss

__all__ = ["ImprovedRetinaNet"]

_NORMALIZERS = ("ema", "mean_positives")


@META_ARCH_REGISTRY.register()
class ImprovedRetinaNet(RetinaNet):
    """
    RetinaNet whose labelling, losses and inference follow the EFL improved baseline:

    - labels from an :class:`ATSSAssigner` (or Detectron2's IoU ``Matcher``);
    - an IoU target per positive anchor: IoU of its current (detached) predicted box with its
      ground truth, used by the IoU branch, as the GIoU weight and as EQFL's quality;
    - a classification loss module from ``efl.losses`` (or Detectron2's focal loss);
    - normalisers recomputed every iteration and averaged over processes (or Detectron2's EMA);
    - inference score sigma(cls) * sigma(iou) when the head has an IoU branch.

    The head decides whether there is an IoU branch: it returns ``(logits, deltas)`` or
    ``(logits, deltas, iou_logits)``. Built from a yacs config (``build_model``) it inherits
    RetinaNet's ``from_config`` and so is Detectron2's RetinaNet; the LazyConfig
    ``configs/common/models/improved_retinanet.py`` sets the improved baseline.
    """

    @configurable
    def __init__(
        self,
        *,
        anchor_assigner: Optional[ATSSAssigner] = None,
        cls_loss: Optional[nn.Module] = None,
        normalizer: str = "ema",
        anchor_matcher=None,
        test_score_thresh: Optional[float] = 0.05,
        **kwargs,
    ):
        """
        Args:
            anchor_assigner: labels anchors per image; None uses ``anchor_matcher`` as RetinaNet.
            cls_loss: module called as ``cls_loss(logits, labels, normalizer)`` (EFL, focal) or,
                when it has ``uses_quality_targets`` / is an EQFL, ``cls_loss(logits, labels,
                iou_targets, normalizer)``; None uses Detectron2's focal loss with
                ``focal_loss_alpha`` / ``focal_loss_gamma``.
            normalizer: "ema" (Detectron2: moving average of the local #positives) or
                "mean_positives" (per iteration, max(all-reduced #positives, 1) / world size; the
                IoU-weighted GIoU uses max(all-reduced sum of IoU targets, 1) / world size).
            anchor_matcher: Detectron2's ``Matcher``; required when ``anchor_assigner`` is None.
            test_score_thresh: score threshold before the per-level top-k; None keeps all.
            kwargs: the remaining arguments of ``detectron2.modeling.RetinaNet``;
                ``box_reg_loss_type`` also accepts "iou_weighted_giou".
        """
        super().__init__(anchor_matcher=anchor_matcher, test_score_thresh=test_score_thresh, **kwargs)
        if anchor_assigner is None and anchor_matcher is None:
            raise ValueError("ImprovedRetinaNet needs an anchor_assigner or an anchor_matcher")
        if normalizer not in _NORMALIZERS:
            raise ValueError(f"normalizer must be one of {_NORMALIZERS}, got {normalizer!r}")
        self.anchor_assigner = anchor_assigner
        # A submodule, so the loss's statistics buffers live in the model's state_dict.
        self.cls_loss = cls_loss
        # (RetinaNet keeps its EMA state in ``self.loss_normalizer``.)
        self.normalizer = normalizer

    @property
    def _cls_loss_uses_quality(self) -> bool:
        return isinstance(self.cls_loss, EqualizedQualityFocalLoss) or getattr(
            self.cls_loss, "uses_quality_targets", False
        )

    def _split_predictions(self, predictions):
        """(N, A*K, H, W)-style per-level lists -> anchor-major (N, H*W*A, K) lists."""
        has_iou = len(predictions) == 3
        dims = [self.num_classes, 4] + ([1] if has_iou else [])
        transposed = self._transpose_dense_predictions(predictions, dims)
        pred_logits, pred_anchor_deltas = transposed[:2]
        pred_ious = transposed[2] if has_iou else None
        return pred_logits, pred_anchor_deltas, pred_ious

    def forward_training(self, images, features, predictions, gt_instances):
        pred_logits, pred_anchor_deltas, pred_ious = self._split_predictions(predictions)
        anchors = self.anchor_generator(features)
        gt_labels, gt_boxes = self.label_anchors(anchors, gt_instances)
        return self.losses(
            anchors, pred_logits, gt_labels, pred_anchor_deltas, gt_boxes, pred_ious=pred_ious
        )

    @torch.no_grad()
    def label_anchors(self, anchors, gt_instances):
        if self.anchor_assigner is None:
            return super().label_anchors(anchors, gt_instances)
        gt_labels, matched_gt_boxes = [], []
        for gt_per_image in gt_instances:
            labels, boxes = self.anchor_assigner(anchors, gt_per_image, self.num_classes)
            gt_labels.append(labels)
            matched_gt_boxes.append(boxes)
        return gt_labels, matched_gt_boxes

    def _mean_over_processes(self, values: List[float]) -> Tensor:
        """max(sum over processes, 1) / world size, for each value, in one all-reduce."""
        stats = torch.tensor(values, dtype=torch.float32, device=self.device)
        world_size = comm.get_world_size()
        if world_size > 1:
            dist.all_reduce(stats)
        return stats.clamp(min=1.0) / world_size

    def losses(
        self, anchors, pred_logits, gt_labels, pred_anchor_deltas, gt_boxes, pred_ious=None
    ):
        """
        Args:
            anchors: #lvl Boxes, (Hi*Wi*A, 4) each.
            pred_logits, pred_anchor_deltas, pred_ious: #lvl tensors (N, Hi*Wi*A, K / 4 / 1);
                ``pred_ious`` is None without an IoU branch.
            gt_labels, gt_boxes: #img tensors (R,) and (R, 4) from :meth:`label_anchors`.

        Returns:
            dict with "loss_cls", "loss_box_reg" and, with an IoU branch, "loss_iou".
        """
        num_images = len(gt_labels)
        gt_labels = torch.stack(gt_labels)  # (N, R)
        gt_boxes = torch.stack(gt_boxes)  # (N, R, 4)
        valid_mask = gt_labels >= 0
        pos_mask = valid_mask & (gt_labels != self.num_classes)
        num_pos_anchors = pos_mask.sum().item()
        get_event_storage().put_scalar("num_pos_anchors", num_pos_anchors / num_images)

        anchors_all = Boxes.cat(anchors).tensor  # (R, 4)
        deltas_all = cat(pred_anchor_deltas, dim=1)  # (N, R, 4)
        # Boxes of the positive anchors decoded from this forward's deltas, (P, 4).
        pos_anchors = anchors_all[None].expand(num_images, -1, -1)[pos_mask]
        pos_pred_boxes = self.box2box_transform.apply_deltas(deltas_all[pos_mask], pos_anchors)
        pos_gt_boxes = gt_boxes[pos_mask]
        iou_targets = aligned_iou(pos_pred_boxes.detach(), pos_gt_boxes)  # (P,)

        if self.normalizer == "ema":
            normalizer = self._ema_update("loss_normalizer", max(num_pos_anchors, 1), 100)
            iou_sum_normalizer = normalizer
        else:
            normalizer, iou_sum_normalizer = self._mean_over_processes(
                [num_pos_anchors, iou_targets.sum().item()]
            )

        logits = cat(pred_logits, dim=1)[valid_mask]  # (M, K), anchor-major rows
        labels = gt_labels[valid_mask]  # (M,)
        if self.cls_loss is None:
            gt_labels_target = F.one_hot(labels, num_classes=self.num_classes + 1)[:, :-1]
            loss_cls = sigmoid_focal_loss_jit(
                logits,
                gt_labels_target.to(logits.dtype),
                alpha=self.focal_loss_alpha,
                gamma=self.focal_loss_gamma,
                reduction="sum",
            ) / normalizer
        elif self._cls_loss_uses_quality:
            quality = torch.zeros_like(gt_labels, dtype=iou_targets.dtype)  # (N, R)
            quality[pos_mask] = iou_targets
            loss_cls = self.cls_loss(logits, labels, quality[valid_mask], normalizer)
        else:
            loss_cls = self.cls_loss(logits, labels, normalizer)

        if self.box_reg_loss_type == "iou_weighted_giou":
            loss_box_reg = iou_weighted_giou_loss(
                pos_pred_boxes, pos_gt_boxes, iou_targets, iou_sum_normalizer
            )
        else:
            loss_box_reg = _dense_box_regression_loss(
                anchors,
                self.box2box_transform,
                pred_anchor_deltas,
                list(gt_boxes),
                pos_mask,
                box_reg_loss_type=self.box_reg_loss_type,
                smooth_l1_beta=self.smooth_l1_beta,
            ) / normalizer

        losses = {"loss_cls": loss_cls, "loss_box_reg": loss_box_reg}
        if pred_ious is not None:
            pos_iou_logits = cat(pred_ious, dim=1)[pos_mask][:, 0]  # (P,)
            losses["loss_iou"] = F.binary_cross_entropy_with_logits(
                pos_iou_logits, iou_targets, reduction="sum"
            ) / normalizer
        return losses

    def forward_inference(
        self, images: ImageList, features: List[Tensor], predictions: List[List[Tensor]]
    ):
        pred_logits, pred_anchor_deltas, pred_ious = self._split_predictions(predictions)
        anchors = self.anchor_generator(features)

        results: List[Instances] = []
        for img_idx, image_size in enumerate(images.image_sizes):
            scores_per_image = [x[img_idx].sigmoid() for x in pred_logits]  # (HWA, K) each
            if pred_ious is not None:
                # The IoU logit is per anchor and scales every class of that anchor.
                scores_per_image = [
                    s * iou[img_idx].sigmoid() for s, iou in zip(scores_per_image, pred_ious)
                ]
            deltas_per_image = [x[img_idx] for x in pred_anchor_deltas]
            results.append(
                self.inference_single_image(anchors, scores_per_image, deltas_per_image, image_size)
            )
        return results

    def _decode_per_level_predictions(
        self,
        anchors: Boxes,
        pred_scores: Tensor,
        pred_deltas: Tensor,
        score_thresh: Optional[float],
        topk_candidates: int,
        image_size: Tuple[int, int],
    ) -> Instances:
        if score_thresh is not None:
            return super()._decode_per_level_predictions(
                anchors, pred_scores, pred_deltas, score_thresh, topk_candidates, image_size
            )
        # Without a threshold every (anchor, class) pair is a candidate: take the top-k of the
        # flattened (HWA*K) scores directly instead of listing all pairs with nonzero().
        num_classes = pred_scores.shape[1]
        flat_scores = pred_scores.flatten()
        num_topk = min(topk_candidates, flat_scores.numel())
        scores, flat_idxs = flat_scores.topk(num_topk)  # sorted, descending
        anchor_idxs = flat_idxs // num_classes
        classes_idxs = flat_idxs % num_classes
        pred_boxes = self.box2box_transform.apply_deltas(
            pred_deltas[anchor_idxs], anchors.tensor[anchor_idxs]
        )
        return Instances(
            image_size, pred_boxes=Boxes(pred_boxes), scores=scores, pred_classes=classes_idxs
        )
