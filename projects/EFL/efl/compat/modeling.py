"""Reaches into detectron2 0.6's modeling internals."""
from detectron2.modeling.box_regression import _dense_box_regression_loss

__all__ = ["dense_box_regression_loss", "fpn_fuse_type", "set_fpn_size_divisibility"]


def dense_box_regression_loss(anchors, box2box_transform, pred_anchor_deltas, gt_boxes, fg_mask, *,
                              box_reg_loss_type, smooth_l1_beta):
    """Detectron2's box-regression loss of dense detectors (smooth L1 on deltas, or GIoU / DIoU /
    CIoU on decoded boxes), summed over the foreground anchors. detectron2 0.6 keeps it private
    (``_dense_box_regression_loss``); RetinaNet and FCOS call it the same way."""
    return _dense_box_regression_loss(anchors, box2box_transform, pred_anchor_deltas, gt_boxes, fg_mask,
                                      box_reg_loss_type=box_reg_loss_type, smooth_l1_beta=smooth_l1_beta)


def set_fpn_size_divisibility(fpn, size_divisibility):
    """Make ``fpn`` ask for batches padded to a multiple of ``size_divisibility``. detectron2 0.6's
    ``FPN.size_divisibility`` is a read-only property over ``_size_divisibility`` (the coarsest
    input stride), and its constructor takes no other value."""
    fpn._size_divisibility = int(size_divisibility)


def fpn_fuse_type(fpn):
    """How ``fpn`` merges the top-down and lateral features, "sum" or "avg". detectron2 0.6 stores
    its constructor's ``fuse_type`` only as ``_fuse_type``."""
    return fpn._fuse_type
