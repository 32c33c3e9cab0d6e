"""The YOLOX-IP training transforms as pure functions of their random draws (docs/yolox_training.md).

Every function takes an image (H, W, C) uint8 array, its boxes (N, 4) float XYXY in pixels and
their classes (N,), plus the values the mapper drew at random, and returns the transformed
triple. Nothing here draws random numbers: `efl.data.yolox_augmentation` draws them, so a test
can push a mask through the same geometry as the image. The rules for dropping boxes are the
reference's (EOD/United-Perception's Mosaic, random perspective, MixUp and resize).
"""
import math

import cv2
import numpy as np

__all__ = [
    "box_candidates",
    "resize_to_fit",
    "mosaic",
    "affine_matrix",
    "source_region",
    "warp_affine",
    "mixup_partner_canvas",
    "mixup",
    "hsv_jitter",
    "horizontal_flip",
    "resize_longest_side_and_pad",
]


def box_candidates(boxes_before, boxes_after, *, min_size=2.0, max_aspect_ratio=20.0, min_area_ratio=0.2):
    """
    Which transformed boxes to keep (the reference's rule, from YOLOv5).

    Args:
        boxes_before: (N, 4) the boxes before the transform, at the transform's scale.
        boxes_after: (N, 4) the same boxes after it (clipped).
        min_size: keep only boxes wider and taller than this (pixels).
        max_aspect_ratio: keep only boxes with max(w/h, h/w) below this.
        min_area_ratio: keep only boxes that kept more than this fraction of their area.

    Returns:
        (N,) bool mask.
    """
    w1 = boxes_before[:, 2] - boxes_before[:, 0]
    h1 = boxes_before[:, 3] - boxes_before[:, 1]
    w2 = boxes_after[:, 2] - boxes_after[:, 0]
    h2 = boxes_after[:, 3] - boxes_after[:, 1]
    # the epsilons are the reference's: they only keep 0/0 finite
    aspect_ratio = np.maximum(w2 / (h2 + 1e-16), h2 / (w2 + 1e-16))
    return (
        (w2 > min_size)
        & (h2 > min_size)
        & (w2 * h2 / (w1 * h1 + 1e-16) > min_area_ratio)
        & (aspect_ratio < max_aspect_ratio)
    )


def _clip(boxes, width, height):
    boxes = boxes.copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    return boxes


def resize_to_fit(image, boxes, size):
    """Scale an image (aspect ratio kept) so that it fits in ``size`` x ``size``: a mosaic tile."""
    h0, w0 = image.shape[:2]
    r = min(size / h0, size / w0)
    if r != 1:
        image = cv2.resize(image, (int(w0 * r), int(h0 * r)), interpolation=cv2.INTER_LINEAR)
    h1, w1 = image.shape[:2]
    # the boxes follow the integer output size, not r, so that they stay on their pixels
    return image, boxes * np.array([w1 / w0, h1 / h0, w1 / w0, h1 / h0])


def mosaic(tiles, center, size, *, region=None):
    """
    Four tiles around ``center`` on a (2 size, 2 size) canvas filled with 0.

    Args:
        tiles: four (image, boxes, classes), each image already within size x size
            (`resize_to_fit`); they go top-left, top-right, bottom-left, bottom-right of the centre.
        center: (xc, yc), integers in [0, 2 size].
        size: the tile size (640).
        region: (x0, y0, x1, y1) within the canvas: copy the tiles only there and leave the rest
            0 (`source_region`: all that the next warp reads; the untouched part of the canvas
            costs nothing, its memory pages are never written). None: the whole canvas.

    Returns:
        (image (2 size, 2 size, C), boxes (M, 4), classes (M,)). Boxes are clipped to the canvas,
        and boxes left without area are dropped: they cover no pixel of the canvas (the
        reference keeps them, and a rotation in the next step can give them an area again).
    """
    xc, yc = center
    side = 2 * size
    rx0, ry0, rx1, ry1 = (0, 0, side, side) if region is None else region
    channels = tiles[0][0].shape[2]
    canvas = np.zeros((side, side, channels), dtype=np.uint8)
    all_boxes, all_classes = [], []
    for position, (image, boxes, classes) in enumerate(tiles):
        h, w = image.shape[:2]
        if position == 0:  # top left: the tile's bottom-right corner at the centre
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b = w - (x2a - x1a), h - (y2a - y1a)
        elif position == 1:  # top right
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, side), yc
            x1b, y1b = 0, h - (y2a - y1a)
        elif position == 2:  # bottom left
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(side, yc + h)
            x1b, y1b = w - (x2a - x1a), 0
        else:  # bottom right
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, side), min(side, yc + h)
            x1b, y1b = 0, 0
        # the tile's rectangle on the canvas, cut to the region
        cx1, cy1, cx2, cy2 = max(x1a, rx0), max(y1a, ry0), min(x2a, rx1), min(y2a, ry1)
        if cx2 > cx1 and cy2 > cy1:
            canvas[cy1:cy2, cx1:cx2] = image[y1b + cy1 - y1a:y1b + cy2 - y1a, x1b + cx1 - x1a:x1b + cx2 - x1a]
        shift = np.array([x1a - x1b, y1a - y1b, x1a - x1b, y1a - y1b], dtype=np.float64)
        all_boxes.append(_clip(boxes + shift, side, side))
        all_classes.append(classes)
    boxes = np.concatenate(all_boxes).reshape(-1, 4)
    classes = np.concatenate(all_classes)
    # A tile is cut only by the canvas edges, so clipping to the canvas is clipping to what is
    # visible of the tile.
    has_area = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return canvas, boxes[has_area], classes[has_area]


def affine_matrix(*, input_size, output_size, angle, scale, shear, translation):
    """
    The reference's random affine as a (3, 3) matrix M = T @ S @ R @ C.

    Args:
        input_size: (h, w) of the input image; C moves its centre to the origin.
        output_size: (h, w) of the output; the translation is a fraction of it.
        angle: rotation in degrees (counter-clockwise, OpenCV's convention).
        scale: isotropic scale.
        shear: (x, y) shear angles in degrees.
        translation: (x, y) position of the input's centre as a fraction of the output size.
    """
    center = np.eye(3)
    center[0, 2] = -input_size[1] / 2
    center[1, 2] = -input_size[0] / 2
    rotation = np.eye(3)
    rotation[:2] = cv2.getRotationMatrix2D(angle=angle, center=(0, 0), scale=scale)
    shearing = np.eye(3)
    shearing[0, 1] = math.tan(shear[0] * math.pi / 180)
    shearing[1, 0] = math.tan(shear[1] * math.pi / 180)
    translate = np.eye(3)
    translate[0, 2] = translation[0] * output_size[1]
    translate[1, 2] = translation[1] * output_size[0]
    return translate @ shearing @ rotation @ center


def source_region(matrix, *, input_size, output_size, margin=2):
    """
    (x0, y0, x1, y1): the part of an ``input_size`` (h, w) image that warping it by ``matrix``
    to ``output_size`` (h, w) reads, as integers within the image: the box around the output's
    corners mapped back, plus ``margin`` pixels for the bilinear neighbours (OpenCV computes the
    source coordinates to a small fraction of a pixel). May be empty.
    """
    out_h, out_w = output_size
    corners = np.array([[0, 0, 1], [out_w, 0, 1], [0, out_h, 1], [out_w, out_h, 1]], dtype=np.float64)
    source = corners @ np.linalg.inv(matrix).T  # (4, 3)
    x0 = min(max(math.floor(source[:, 0].min()) - margin, 0), input_size[1])
    y0 = min(max(math.floor(source[:, 1].min()) - margin, 0), input_size[0])
    x1 = max(min(math.ceil(source[:, 0].max()) + margin, input_size[1]), x0)
    y1 = max(min(math.ceil(source[:, 1].max()) + margin, input_size[0]), y0)
    return x0, y0, x1, y1


def warp_affine(image, boxes, classes, matrix, *, scale, output_size):
    """
    Warp the image by ``matrix`` (border 0); boxes become the hull of their warped corners,
    clipped, and are kept by `box_candidates` (w, h > 2 px, area > 0.2 of the box x ``scale``,
    aspect < 20).
    """
    out_h, out_w = output_size
    warped = cv2.warpAffine(image, matrix[:2], dsize=(out_w, out_h), borderValue=(0, 0, 0))
    if warped.ndim == 2:  # OpenCV drops a single channel axis
        warped = warped[:, :, None]
    n = len(boxes)
    if n == 0:
        return warped, boxes.reshape(0, 4), classes
    corners = np.ones((n * 4, 3))
    # x1y1, x2y2, x1y2, x2y1
    corners[:, :2] = boxes[:, [0, 1, 2, 3, 0, 3, 2, 1]].reshape(n * 4, 2)
    corners = (corners @ matrix.T)[:, :2].reshape(n, 8)
    xs, ys = corners[:, [0, 2, 4, 6]], corners[:, [1, 3, 5, 7]]
    hull = np.stack([xs.min(1), ys.min(1), xs.max(1), ys.max(1)], axis=1)
    hull = _clip(hull, out_w, out_h)
    keep = box_candidates(boxes * scale, hull)
    return warped, hull[keep], classes[keep]


def mixup_partner_canvas(image, boxes, *, input_size, jitter):
    """
    The MixUp partner letterboxed at the top-left of an ``input_size`` canvas (fill 0), then the
    canvas scaled by ``jitter``. Returns (canvas, boxes scaled and clipped to the canvas).
    """
    h, w = image.shape[:2]
    canvas = np.zeros((input_size[0], input_size[1], image.shape[2]), dtype=np.uint8)
    r = min(input_size[0] / h, input_size[1] / w)
    size = (int(w * r), int(h * r))
    # the usual 640 px image needs no resize (OpenCV's would return an exact copy)
    resized = image if size == (w, h) else cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    if resized.ndim == 2:
        resized = resized[:, :, None]
    canvas[: size[1], : size[0]] = resized
    canvas = cv2.resize(
        canvas, (int(input_size[1] * jitter), int(input_size[0] * jitter)), interpolation=cv2.INTER_LINEAR
    )
    if canvas.ndim == 2:
        canvas = canvas[:, :, None]
    return canvas, _clip(boxes * (r * jitter), canvas.shape[1], canvas.shape[0])


def mixup(image, boxes, classes, partner_canvas, partner_boxes, partner_classes, *, offset):
    """
    Blend a crop of the partner canvas into the image, 0.5 / 0.5.

    Args:
        image, boxes, classes: the current sample.
        partner_canvas, partner_boxes, partner_classes: from `mixup_partner_canvas`.
        offset: (x, y) of the crop (of the image's size) in the partner canvas padded with 0 to
            at least the image's size.

    Returns:
        The blended sample with the partner's boxes that survive the crop (w, h > 5 px, area
        > 0.2 of the uncropped box, aspect < 20); the image unchanged if none survives.
    """
    target_h, target_w = image.shape[:2]
    x0, y0 = offset
    patch = partner_canvas[y0:y0 + target_h, x0:x0 + target_w]
    if patch.shape == image.shape:  # the canvas covers the image: the crop is a view
        crop = patch
    else:  # the crop of the canvas zero-padded to the image's size, without building the pad
        crop = np.zeros_like(image)
        crop[: patch.shape[0], : patch.shape[1]] = patch
    moved = _clip(partner_boxes - np.array([x0, y0, x0, y0], dtype=np.float64), target_w, target_h)
    keep = box_candidates(partner_boxes, moved, min_size=5.0)
    if not keep.any():
        return image, boxes, classes
    # floor((a + b) / 2), the reference's float blend 0.5 a + 0.5 b truncated to uint8, in uint8
    # without overflow: (a & b) + ((a ^ b) >> 1) (the common bits plus half of the others)
    half_difference = cv2.bitwise_xor(image, crop)
    half_difference >>= 1
    blended = cv2.add(cv2.bitwise_and(image, crop), half_difference, dst=half_difference)
    return (
        blended.reshape(image.shape),  # OpenCV drops a single channel axis
        np.concatenate([boxes.reshape(-1, 4), moved[keep]]),
        np.concatenate([classes, partner_classes[keep]]),
    )


def hsv_jitter(image, gains):
    """
    Multiply hue, saturation and value of a BGR image by ``gains`` (3,) through look-up tables
    (OpenCV's 8-bit HSV: hue in [0, 180) wraps around, saturation and value saturate at 255).
    """
    x = np.arange(256, dtype=np.float64)
    # one (256, 1, 3) table: cv2.LUT maps each channel through its own column, in place, so the
    # image is never split into planes nor merged back
    lut = np.empty((256, 1, 3), dtype=np.uint8)
    lut[:, 0, 0] = (x * gains[0]) % 180
    lut[:, 0, 1] = np.clip(x * gains[1], 0, 255)
    lut[:, 0, 2] = np.clip(x * gains[2], 0, 255)
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    cv2.LUT(hsv, lut, dst=hsv)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def horizontal_flip(image, boxes):
    """Mirror the image left-right; x -> W - x (no pixel offset: the aligned convention)."""
    width = image.shape[1]
    flipped = boxes.copy()
    flipped[:, 0] = width - boxes[:, 2]
    flipped[:, 2] = width - boxes[:, 0]
    image = cv2.flip(image, 1)
    return (image[:, :, None] if image.ndim == 2 else image), flipped


def resize_longest_side_and_pad(image, boxes, classes, size):
    """
    Resize so that the longer side is ``size`` (aspect kept), pad with 0 to ``size`` x ``size``
    with the image at the top-left, and drop boxes of width or height <= 1 px.
    """
    h, w = image.shape[:2]
    s = size / max(h, w)
    resized = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
    if resized.ndim == 2:
        resized = resized[:, :, None]
    rh, rw = resized.shape[:2]
    if rh >= size and rw >= size:  # a square input (after Mosaic) needs no padding
        padded = resized
    else:
        padded = np.zeros((max(size, rh), max(size, rw), image.shape[2]), dtype=np.uint8)
        padded[:rh, :rw] = resized
    boxes = boxes * s
    keep = ((boxes[:, 2] - boxes[:, 0]) > 1) & ((boxes[:, 3] - boxes[:, 1]) > 1)
    return padded, boxes[keep], classes[keep]
