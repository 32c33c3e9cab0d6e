"""The one-stage meta-architecture of both EFL detector families, the improved-baseline RetinaNet
and YOLOX-IP (docs/improved_baseline.md, docs/yolox_ip.md): Detectron2's RetinaNet whose varying
steps are parts passed to the constructor and set in the LazyConfig."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detectron2.config import configurable
from detectron2.layers import batched_nms, cat
from detectron2.modeling import META_ARCH_REGISTRY, RetinaNet, detector_postprocess
from detectron2.structures import Boxes, ImageList, Instances

from ..utils.deferred_scalars import put_scalar_deferred
from .eod_inference import (
    EODInferenceRules,
    boxes_to_picture,
    class_offset_nms,
    clip_and_keep_nonempty,
    to_eod_coordinates,
)
from .positive_samples import PositiveSamples

__all__ = ["ImprovedRetinaNet"]


@META_ARCH_REGISTRY.register()
class ImprovedRetinaNet(RetinaNet):
    """
    RetinaNet with pluggable labelling, losses and normalisers:

        L = L_cls(x, y, q) / N_pos  +  sum_k L_box_k  +  L_iou / N_pos

    - ``anchor_labeler`` labels anchors (:class:`ATSSAssigner`, or :class:`MatcherLabeler` for
      Detectron2's IoU matcher);
    - q, the quality target of each positive, is the IoU of its detached predicted box with its
      ground truth (:class:`PositiveSamples`);
    - ``cls_loss`` is any ``efl.losses`` module (EFL, EQFL; s = 0 gives focal loss / QFL),
      called through ``forward_with_quality`` so that the detector never asks which one it is;
    - ``box_losses`` is a list of terms (IoU-weighted GIoU; YOLOX-IP adds an L1 on the deltas);
    - ``iou_loss`` trains the IoU branch when the head has one (three outputs);
    - ``normalizer`` gives N_pos and the IoU-target normaliser.

    Inference scores are sigma(cls) * sigma(iou) with an IoU branch, sigma(cls) without; with no
    score threshold the per-level top-k runs on all (anchor, class) pairs directly.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: nn.Module,
        head: nn.Module,
        head_in_features: Sequence[str],
        anchor_generator: nn.Module,
        box2box_transform,
        anchor_labeler,
        cls_loss: nn.Module,
        box_losses: Sequence,
        iou_loss=None,
        normalizer,
        num_classes: int,
        test_score_thresh: Optional[float] = None,
        test_topk_candidates: int = 1000,
        test_nms_thresh: float = 0.5,
        max_detections_per_image: int = 300,
        test_pad_to: Optional[Tuple[int, int]] = None,
        clip_boxes_before_nms: bool = False,
        eod_inference: Optional[str] = None,
        pixel_mean,
        pixel_std,
        input_format: str = "BGR",
        vis_period: int = 0,
    ):
        """
        Args:
            backbone, head, head_in_features, anchor_generator, box2box_transform, num_classes,
                pixel_mean, pixel_std, input_format, vis_period: as ``detectron2.modeling.RetinaNet``.
                The head returns per-level lists (class logits, box deltas) or (class logits,
                box deltas, IoU logits), anchor-major in the channel axis.
            anchor_labeler: ``labeler(anchors, gt_instances, num_classes) -> (labels (R,),
                matched gt boxes (R, 4))`` for one image; labels in [-1, K], K = background.
            cls_loss: an ``efl.losses`` module (its buffers become part of the model's state).
            box_losses: terms ``term(positives, normalizers) -> {name: loss}``.
            iou_loss: the IoU-branch term (same call), or None for a head without IoU branch.
            normalizer: ``normalizer(num_positives, iou_target_sum) -> LossNormalizers``.
            test_score_thresh: score threshold before the per-level top-k; None keeps all.
            test_topk_candidates: (anchor, class) candidates kept per level before NMS.
            test_nms_thresh: IoU threshold of the class-aware NMS.
            max_detections_per_image: detections kept per image after NMS.
            test_pad_to: (H, W): in inference, pad every batch to at least this size (YOLOX-IP
                tests on a 640 x 640 canvas); None pads to the backbone's size divisibility only.
            clip_boxes_before_nms: as the reference, clip each level's decoded boxes to the image
                and drop the empty ones before the top-k and NMS (Detectron2 clips after NMS);
                needs ``test_score_thresh=None``.
            eod_inference: the reference's inference rules, to evaluate its released models
                exactly (``efl.modeling.eod_inference``): None (Detectron2's inference), a preset
                ("improved_baseline", "yolox_ip") or rule names joined by "+"; needs ``test_score_thresh=None``.
        """
        super().__init__(
            backbone=backbone,
            head=head,
            head_in_features=head_in_features,
            anchor_generator=anchor_generator,
            box2box_transform=box2box_transform,
            anchor_matcher=None,
            num_classes=num_classes,
            test_score_thresh=test_score_thresh,
            test_topk_candidates=test_topk_candidates,
            test_nms_thresh=test_nms_thresh,
            max_detections_per_image=max_detections_per_image,
            pixel_mean=pixel_mean,
            pixel_std=pixel_std,
            vis_period=vis_period,
            input_format=input_format,
        )
        # RetinaNet's own loss settings are not used here: the parts below replace them.
        del self.focal_loss_alpha, self.focal_loss_gamma, self.smooth_l1_beta, self.box_reg_loss_type
        self.anchor_labeler = anchor_labeler
        # A submodule, so the loss's statistics buffers live in the model's state_dict.
        self.cls_loss = cls_loss
        self.box_losses = list(box_losses)
        self.iou_loss = iou_loss
        self.normalizer = normalizer
        self.test_pad_to = tuple(test_pad_to) if test_pad_to else None
        if clip_boxes_before_nms and test_score_thresh is not None:
            raise ValueError("clip_boxes_before_nms=True needs test_score_thresh=None")
        self.clip_boxes_before_nms = clip_boxes_before_nms
        self.eod_rules = EODInferenceRules.parse(eod_inference)
        if self.eod_rules.any and test_score_thresh is not None:
            raise ValueError(f"eod_inference={eod_inference!r} needs test_score_thresh=None")

    @classmethod
    def from_config(cls, cfg):
        raise NotImplementedError(
            "ImprovedRetinaNet is built from the project's LazyConfig python files, not from a "
            "yacs config: use e.g. `tools/train_net.py --config-file "
            "configs/efl_improved_baseline_r50_2x_rfs.py`, or "
            "`instantiate(LazyConfig.load('configs/...py').model)` in Python."
        )

    # ------------------------------------------------------------------------------------------
    def forward(self, batched_inputs):
        if self.training or not self.eod_rules.any:
            return super().forward(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        features = [features[f] for f in self.head_in_features]
        results = self.forward_inference(images, features, self.head(features))
        processed = []
        for result, inputs, image_size in zip(results, batched_inputs, images.image_sizes):
            height, width = inputs.get("height", image_size[0]), inputs.get("width", image_size[1])
            processed.append({"instances": self._to_picture(result, height, width)})
        return processed

    def _to_picture(self, result: Instances, height: int, width: int) -> Instances:
        """Reference-mode results (boxes in the reference's coordinates on the resized image) ->
        detections on the picture of size (height, width)."""
        rules = self.eod_rules
        boxes = boxes_to_picture(result.pred_boxes.tensor, result.image_size, (height, width),
                                 plus_one=rules.plus_one, one_scale=rules.one_scale)
        picture = Instances((height, width), pred_boxes=Boxes(boxes), scores=result.scores,
                            pred_classes=result.pred_classes)
        if rules.plus_one or rules.canvas_clip:
            return picture  # the reference writes every box back unclipped
        # Detectron2's detector_postprocess on boxes already at the picture's scale: clip, drop empty
        return detector_postprocess(picture, height, width)

    def preprocess_image(self, batched_inputs):
        images = super().preprocess_image(batched_inputs)
        if self.training or self.test_pad_to is None:
            return images
        height, width = images.tensor.shape[-2:]
        pad_h, pad_w = max(self.test_pad_to[0] - height, 0), max(self.test_pad_to[1] - width, 0)
        # zeros at the bottom and right, as the images are placed at the top-left
        return ImageList(F.pad(images.tensor, (0, pad_w, 0, pad_h)), images.image_sizes)

    def _split_predictions(self, predictions):
        """Per-level (N, A*K, H, W)-style lists -> anchor-major (N, H*W*A, K) lists; IoU logits
        come back as (N, H*W*A) per level, or None for a head without an IoU branch."""
        if len(predictions) not in (2, 3):
            raise ValueError(f"the head must return 2 or 3 per-level lists, got {len(predictions)}")
        has_iou = len(predictions) == 3
        dims = [self.num_classes, 4] + ([1] if has_iou else [])
        transposed = self._transpose_dense_predictions(predictions, dims)
        pred_ious = [x[..., 0] for x in transposed[2]] if has_iou else None
        return transposed[0], transposed[1], pred_ious

    def forward_training(self, images, features, predictions, gt_instances):
        pred_logits, pred_anchor_deltas, pred_ious = self._split_predictions(predictions)
        if (pred_ious is None) != (self.iou_loss is None):
            raise ValueError(
                "a head with an IoU branch needs an iou_loss and a head without one needs "
                f"iou_loss=None (head outputs: {len(predictions)}, iou_loss: {self.iou_loss})"
            )
        anchors = self.anchor_generator(features)
        gt_labels, gt_boxes = self.label_anchors(anchors, gt_instances)
        return self.losses(anchors, pred_logits, gt_labels, pred_anchor_deltas, gt_boxes, pred_ious)

    @torch.no_grad()
    def label_anchors(self, anchors, gt_instances):
        gt_labels, matched_gt_boxes = [], []
        for gt_per_image in gt_instances:
            labels, boxes = self.anchor_labeler(anchors, gt_per_image, self.num_classes)
            gt_labels.append(labels)
            matched_gt_boxes.append(boxes)
        return gt_labels, matched_gt_boxes

    def losses(self, anchors, pred_logits, gt_labels, pred_anchor_deltas, gt_boxes, pred_ious=None):
        """
        Args:
            anchors: #lvl Boxes, (Hi*Wi*A, 4) each.
            pred_logits, pred_anchor_deltas: #lvl tensors (N, Hi*Wi*A, K) and (N, Hi*Wi*A, 4).
            gt_labels, gt_boxes: #img tensors (R,) and (R, 4) from :meth:`label_anchors`.
            pred_ious: #lvl tensors (N, Hi*Wi*A), or None without an IoU branch.

        Returns:
            {"loss_cls": ..., one entry per box term, "loss_iou" with an IoU branch}
        """
        gt_labels = torch.stack(gt_labels)  # (N, R)
        valid_mask = gt_labels >= 0
        pos_mask = valid_mask & (gt_labels != self.num_classes)
        positives = PositiveSamples.gather(
            Boxes.cat(anchors).tensor,
            cat(pred_anchor_deltas, dim=1),
            torch.stack(gt_boxes),
            pos_mask,
            self.box2box_transform,
            None if pred_ious is None else cat(pred_ious, dim=1),
        )
        num_positives = pos_mask.sum()
        put_scalar_deferred("num_pos_anchors", num_positives / len(gt_labels))  # no host read here
        normalizers = self.normalizer(num_positives, positives.iou_targets.sum())

        # quality target of every anchor: the IoU target on positives (filled in the (image,
        # anchor) order of PositiveSamples), 0 elsewhere
        quality = torch.zeros_like(gt_labels, dtype=positives.iou_targets.dtype)  # (N, R)
        quality.masked_scatter_(pos_mask, positives.iou_targets)
        # (M,) the valid anchors, listed once for the three selections: one host read
        valid = valid_mask.flatten().nonzero().squeeze(1)
        losses = {
            "loss_cls": self.cls_loss.forward_with_quality(
                cat(pred_logits, dim=1).flatten(0, 1).index_select(0, valid),  # (M, K), anchor-major rows
                gt_labels.flatten().index_select(0, valid),
                quality.flatten().index_select(0, valid),
                normalizers.positives,
            )
        }
        terms = self.box_losses + ([self.iou_loss] if self.iou_loss is not None else [])
        for term in terms:
            for name, value in term(positives, normalizers).items():
                if name in losses:
                    raise ValueError(f"two loss terms of {type(self).__name__} are named {name!r}")
                losses[name] = value
        return losses

    # ------------------------------------------------------------------------------------------
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
                    s * iou[img_idx, :, None].sigmoid() for s, iou in zip(scores_per_image, pred_ious)
                ]
            deltas_per_image = [x[img_idx] for x in pred_anchor_deltas]
            if self.eod_rules.any:
                canvas_size = tuple(images.tensor.shape[-2:])
                results.append(self._eod_inference_single_image(
                    anchors, scores_per_image, deltas_per_image, image_size, canvas_size))
                continue
            results.append(
                self.inference_single_image(anchors, scores_per_image, deltas_per_image, image_size)
            )
        return results

    def _eod_inference_single_image(self, anchors, scores, deltas, image_size, canvas_size):
        """The reference's post-processing (roi_predictor.py ``RoiPredictorMultiCls`` and
        ``RetinaMergerMultiCls``) with the rules of ``self.eod_rules``; boxes stay in the
        reference's coordinates on the resized image (see :meth:`_to_picture`)."""
        rules = self.eod_rules
        clip_size = canvas_size if rules.canvas_clip else image_size
        levels = [
            self._eod_decode_level(anchors_i, scores_i, deltas_i, clip_size)
            for anchors_i, scores_i, deltas_i in zip(anchors, scores, deltas)
        ]
        pred = Instances.cat(levels)
        pred = Instances(image_size, **pred.get_fields())
        boxes = pred.pred_boxes.tensor
        if rules.class_offset_nms:
            keep = class_offset_nms(boxes, pred.scores, pred.pred_classes, self.test_nms_thresh,
                                    plus_one=rules.plus_one)
        else:  # exact per-class NMS; +1 boxes read as continuous ones give the +1 IoU
            offset = 1.0 if rules.plus_one else 0.0
            keep = batched_nms(boxes + boxes.new_tensor([0.0, 0.0, offset, offset]), pred.scores,
                               pred.pred_classes, self.test_nms_thresh)
        return pred[keep[: self.max_detections_per_image]]

    def _eod_decode_level(self, anchors: Boxes, scores: Tensor, deltas: Tensor, clip_size):
        """One level: decode every anchor, clip, drop empty boxes, then the top-k (anchor, class)
        pairs by score; k = min(test_topk_candidates, anchors left) with topk_counts_anchors."""
        rules = self.eod_rules
        boxes = to_eod_coordinates(self.box2box_transform.apply_deltas(deltas, anchors.tensor),
                                   rules.plus_one)
        boxes, keep = clip_and_keep_nonempty(boxes, clip_size, rules.plus_one)
        scores, boxes = scores[keep], boxes[keep]
        num_classes = scores.shape[1]
        flat_scores = scores.flatten()
        num_topk = min(self.test_topk_candidates,
                       len(boxes) if rules.topk_counts_anchors else flat_scores.numel())
        top_scores, flat_idxs = flat_scores.topk(num_topk)  # sorted, descending
        return Instances(clip_size, pred_boxes=Boxes(boxes[flat_idxs // num_classes]),
                         scores=top_scores, pred_classes=flat_idxs % num_classes)

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
        if self.clip_boxes_before_nms:
            # decode every anchor of the level (HWA x 4, small next to HWA x K scores), clip, and
            # keep the non-empty boxes as the only candidates
            boxes = Boxes(self.box2box_transform.apply_deltas(pred_deltas, anchors.tensor))
            boxes.clip(image_size)
            keep = boxes.nonempty(threshold=0.0)
            pred_scores, all_boxes = pred_scores[keep], boxes.tensor[keep]
        flat_scores = pred_scores.flatten()
        num_candidates = flat_scores.numel()
        if isinstance(num_candidates, Tensor):
            # a 0-dim tensor while tracing (efl.export): keep k dynamic in the exported graph, as
            # Detectron2's RetinaNet does, so that smaller inputs than the traced one still work
            num_topk = torch.clamp(num_candidates, max=topk_candidates)
        else:
            num_topk = min(topk_candidates, num_candidates)
        scores, flat_idxs = flat_scores.topk(num_topk)  # sorted, descending
        anchor_idxs = flat_idxs // num_classes
        classes_idxs = flat_idxs % num_classes
        if self.clip_boxes_before_nms:
            pred_boxes = all_boxes[anchor_idxs]
        else:
            pred_boxes = self.box2box_transform.apply_deltas(
                pred_deltas[anchor_idxs], anchors.tensor[anchor_idxs]
            )
        return Instances(
            image_size, pred_boxes=Boxes(pred_boxes), scores=scores, pred_classes=classes_idxs
        )
