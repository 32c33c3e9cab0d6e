"""The YOLOX-IP training mapper: Mosaic, random affine, MixUp, HSV, flip, random size
(docs/yolox_training.md).

`YOLOXTrainMapper` is a Detectron2 dataset mapper, used through `build_detection_train_loader`
and its sampler (repeat factor sampling for LVIS). The sampler picks the first mosaic tile; the
three other tiles and the MixUp partner are drawn uniformly from the whole dataset, as in the
reference, so the mapper is given the dataset's dicts. With ``no_aug=True`` it is the mapper of
the last 15 epochs: HSV, flip and random size only.

Random numbers come from NumPy's global generator, which Detectron2 seeds differently in every
data-loader worker. Test images go through Detectron2's own `DatasetMapper` with
`ResizeShortestEdge(640, max_size=640)` (longest side 640); the model pads them to 640 x 640 at
the top-left (`ImprovedRetinaNet(test_pad_to=(640, 640))`).
"""
import copy
import logging

import cv2
import numpy as np
import torch
from detectron2.data import detection_utils as utils
from detectron2.data.common import DatasetFromList
from detectron2.structures import Boxes, BoxMode, Instances

from . import yolox_transforms as YT

__all__ = ["YOLOXTrainMapper"]

logger = logging.getLogger(__name__)


class YOLOXTrainMapper:
    """
    Maps a Detectron2 dataset dict to the model's training input: ``image`` a (3, S, S) uint8
    BGR tensor (0-255, no normalisation), S = 32 x U{15..25}, the image at the top-left, and
    ``instances`` with ``gt_boxes`` and ``gt_classes``.

    An image whose every box is dropped by the augmentation is trained as background (all its
    anchors negative); such samples are counted and logged, never skipped.
    """

    # The arguments that turn a configured mapper into the one of the last epochs (no Mosaic and
    # MixUp, hence no partners): what a training loop's no-augmentation switch sets
    # (efl.engine.defaults.build_no_aug_switch).
    NO_AUGMENTATION_ARGUMENTS = {"no_aug": True, "dataset_dicts": None}

    def __init__(
        self,
        *,
        dataset_dicts=None,
        no_aug=False,
        input_size=640,
        degrees=10.0,
        translate=0.1,
        scale=(0.1, 2.0),
        shear=2.0,
        mixup_scale=(0.8, 1.6),
        hsv_gains=(0.015, 0.7, 0.4),
        flip_prob=0.5,
        random_size=(15, 25),
        size_step=32,
    ):
        """
        Args:
            dataset_dicts: list[dict], the training set in Detectron2's format (without
                repeats), from which the mosaic and MixUp partners are drawn uniformly. Not needed
                with ``no_aug``.
            no_aug: True for the last epochs: HSV, flip and random size only.
            input_size: mosaic tile size and affine / MixUp output size (square).
            degrees: rotation drawn from U(-degrees, degrees).
            translate: the affine output centre is at U(0.5 - translate, 0.5 + translate) x size.
            scale: (low, high) of the affine scale U(low, high).
            shear: x and y shear angles drawn from U(-shear, shear) degrees.
            mixup_scale: (low, high) of the MixUp partner's scale jitter.
            hsv_gains: (h, s, v): each channel is multiplied by 1 + U(-gain, gain).
            flip_prob: probability of the horizontal flip.
            random_size: (low, high), inclusive: the longer side becomes size_step x U{low..high}.
            size_step: see random_size.
        """
        if not no_aug and not dataset_dicts:
            raise ValueError("YOLOXTrainMapper needs dataset_dicts (the partners of Mosaic and MixUp) "
                             "unless no_aug=True")
        # Serialized like Detectron2's own dataset list, so that forked workers share the memory.
        self.partners = None if no_aug else DatasetFromList(list(dataset_dicts), copy=False, serialize=True)
        self.no_aug = no_aug
        self.input_size = int(input_size)
        self.degrees = degrees
        self.translate = translate
        self.scale = tuple(scale)
        self.shear = shear
        self.mixup_scale = tuple(mixup_scale)
        self.hsv_gains = np.asarray(hsv_gains, dtype=np.float64)
        self.flip_prob = flip_prob
        self.random_size = tuple(random_size)
        self.size_step = int(size_step)
        self.num_samples = 0
        self.num_background = 0

    # ------------------------------------------------------------------------------------------
    def __call__(self, dataset_dict):
        dataset_dict = copy.copy(dataset_dict)
        sample = self.load(dataset_dict)
        partners = None
        if not self.no_aug:
            # 3 mosaic tiles + 1 MixUp partner, uniform over the dataset (not the RFS sampler)
            partners = [self.load(self.partners[i]) for i in np.random.randint(0, len(self.partners), size=4)]
        image, boxes, classes = self.augment(sample, partners, rng=np.random)
        self._count(had_boxes=len(sample[1]) > 0 or any(len(p[1]) for p in partners or []),
                    has_boxes=len(boxes) > 0, dataset_dict=dataset_dict)

        dataset_dict.pop("annotations", None)
        size = image.shape[:2]
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        instances = Instances(size)
        instances.gt_boxes = Boxes(torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4))
        instances.gt_classes = torch.as_tensor(classes, dtype=torch.int64)
        dataset_dict["instances"] = instances
        return dataset_dict

    def augment(self, sample, partners, *, rng):
        """
        The pipeline on loaded arrays: ``sample`` and each partner are (image, boxes, classes).

        Args:
            sample: the image the sampler chose.
            partners: 3 mosaic partners then the MixUp partner (ignored with ``no_aug``).
            rng: ``numpy.random`` or a ``numpy.random.RandomState``: every draw comes from it,
                and the draws depend only on the image sizes, so a mask of the same size goes
                through the same geometry.

        Returns:
            (image (S, S, C) uint8, boxes (M, 4), classes (M,)).
        """
        image, boxes, classes = sample
        if not self.no_aug:
            image, boxes, classes = self._mosaic_and_affine([sample] + list(partners[:3]), rng)
            image, boxes, classes = self._mixup(image, boxes, classes, partners[3], rng)
        gains = rng.uniform(-1, 1, 3) * self.hsv_gains + 1
        if image.shape[2] == 3:
            image = YT.hsv_jitter(image, gains)
        if rng.random_sample() < self.flip_prob:
            image, boxes = YT.horizontal_flip(image, boxes)
        size = self.size_step * rng.randint(self.random_size[0], self.random_size[1] + 1)
        return YT.resize_longest_side_and_pad(image, boxes, classes, size)

    def _mosaic_and_affine(self, tiles, rng):
        s = self.input_size
        # the centre as (y, x), in that order, as the reference draws it
        yc, xc = (int(rng.uniform(s // 2, 2 * s - s // 2)) for _ in range(2))
        fitted = []
        for image, boxes, classes in tiles:
            image, boxes = YT.resize_to_fit(image, boxes, s)
            fitted.append((image, boxes, classes))

        angle = rng.uniform(-self.degrees, self.degrees)
        scale = rng.uniform(*self.scale)
        shear = (rng.uniform(-self.shear, self.shear), rng.uniform(-self.shear, self.shear))
        translation = (rng.uniform(0.5 - self.translate, 0.5 + self.translate),
                       rng.uniform(0.5 - self.translate, 0.5 + self.translate))
        canvas_size = (2 * s, 2 * s)
        matrix = YT.affine_matrix(input_size=canvas_size, output_size=(s, s), angle=angle,
                                  scale=scale, shear=shear, translation=translation)
        # The tiles are copied only where the warp reads the (2s, 2s) canvas (all of it at
        # scales below ~0.5, about a quarter at scale 1): the same warped image, fewer copies.
        region = YT.source_region(matrix, input_size=canvas_size, output_size=(s, s))
        image, boxes, classes = YT.mosaic(fitted, (xc, yc), s, region=region)
        return YT.warp_affine(image, boxes, classes, matrix, scale=scale, output_size=(s, s))

    def _mixup(self, image, boxes, classes, partner, rng):
        # The reference also draws a flip of the partner with probability 0 (flip_prob 1 and
        # the test U(0, 1) > 1): the partner is never flipped, so no flip is drawn here.
        jitter = rng.uniform(*self.mixup_scale)
        partner_image, partner_boxes, partner_classes = partner
        canvas, canvas_boxes = YT.mixup_partner_canvas(
            partner_image, partner_boxes, input_size=(self.input_size, self.input_size), jitter=jitter
        )
        target_h, target_w = image.shape[:2]
        padded_h, padded_w = max(canvas.shape[0], target_h), max(canvas.shape[1], target_w)
        # the reference's offsets: U{0 .. padded - target - 1} when the canvas is larger
        y0 = rng.randint(0, padded_h - target_h) if padded_h > target_h else 0
        x0 = rng.randint(0, padded_w - target_w) if padded_w > target_w else 0
        return YT.mixup(image, boxes, classes, canvas, canvas_boxes, partner_classes, offset=(x0, y0))

    # ------------------------------------------------------------------------------------------
    @staticmethod
    def load(dataset_dict):
        """(image (H, W, 3) uint8 BGR, boxes (N, 4) XYXY float64, classes (N,) int64) of a dataset
        dict; crowd annotations are left out, as Detectron2's DatasetMapper does."""
        file_name = dataset_dict.get("file_name", "<no file_name>")
        try:
            # read_image(format="BGR") returns a channel-reversed view of the RGB decode, which
            # every later copy and OpenCV call would walk pixel by pixel (the mosaic's tile
            # copies took 10x longer); one OpenCV swap makes the same BGR pixels contiguous.
            image = cv2.cvtColor(utils.read_image(file_name, format="RGB"), cv2.COLOR_RGB2BGR)
        except Exception as e:
            raise OSError(
                f"YOLOXTrainMapper: cannot read image {file_name!r} "
                f"(image_id {dataset_dict.get('image_id', '?')}): {e}"
            ) from e
        utils.check_image_size(dataset_dict, image)
        annotations = [a for a in dataset_dict.get("annotations", []) if a.get("iscrowd", 0) == 0]
        boxes = np.array([a["bbox"] for a in annotations], dtype=np.float64).reshape(-1, 4)
        modes = np.array([int(a["bbox_mode"]) for a in annotations])
        for mode in set(modes.tolist()):  # one conversion per box mode, not per box
            if mode == BoxMode.XYWH_ABS:  # BoxMode.convert's arithmetic, without its torch round trip
                boxes[modes == mode, 2:] += boxes[modes == mode, :2]
            else:
                boxes[modes == mode] = BoxMode.convert(boxes[modes == mode], BoxMode(mode), BoxMode.XYXY_ABS)
        classes = np.array([a["category_id"] for a in annotations], dtype=np.int64)
        return image, boxes, classes

    def _count(self, *, had_boxes, has_boxes, dataset_dict):
        self.num_samples += 1
        if had_boxes and not has_boxes:
            self.num_background += 1
            n = self.num_background
            if n & (n - 1) == 0:  # 1, 2, 4, 8, ...: a trace without flooding the log
                logger.info(
                    f"YOLOX augmentation dropped every box of {n} of {self.num_samples} samples so "
                    f"far in this worker (latest: image_id {dataset_dict.get('image_id', '?')}); "
                    "they are trained as background"
                )
