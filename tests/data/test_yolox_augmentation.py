"""The YOLOX-IP training mapper: boxes follow the pixels through every transform and through the
whole pipeline, the reference's box filters on hand cases, MixUp's partner is never flipped, the
output sizes, bad input, Detectron2's loader with repeat factor sampling, and the test mapper.

Box/pixel consistency: each box is drawn as a filled mask in an otherwise black image; the mask
goes through the same transform with the same random draws as the box, and the box must equal the
extent of the mask (thresholded at half its maximum, since bilinear resampling and the MixUp blend
scale it) to within `TOL` pixels: OpenCV resamples with pixel centres at integer coordinates while
boxes have pixel edges there, a sub-pixel shift that a scale of up to 2 makes ~1 px.
"""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.data import build_detection_train_loader
from detectron2.data import transforms as T
from detectron2.data.samplers import RepeatFactorTrainingSampler
from detectron2.structures import BoxMode

from efl.data import yolox_transforms as YT
from efl.data.yolox_augmentation import YOLOXTrainMapper

REPO = Path(__file__).resolve().parents[2]
TOL = 1.5


def _mask_image(shape, box):
    """(H, W, 3) uint8: 255 inside the integer box (x1, y1, x2, y2), 0 elsewhere."""
    image = np.zeros((*shape, 3), dtype=np.uint8)
    x1, y1, x2, y2 = (int(v) for v in box)
    image[y1:y2, x1:x2] = 255
    return image


def _extent(image):
    """(x1, y1, x2, y2) of the pixels above half the maximum (pixel edges), or None."""
    gray = image.max(axis=2).astype(np.float64)
    if gray.max() == 0:
        return None
    ys, xs = np.nonzero(gray >= gray.max() / 2)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def _assert_box_on_mask(box, mask_image, *, exact=True, tol=TOL):
    extent = _extent(mask_image)
    assert extent is not None, f"box {box} kept, but its pixels are gone"
    if exact:
        np.testing.assert_allclose(box, extent, atol=tol, err_msg="box != mask extent")
    else:  # the clipped hull of a rotated box contains its visible pixels
        assert extent[0] >= box[0] - tol and extent[1] >= box[1] - tol
        assert extent[2] <= box[2] + tol and extent[3] <= box[3] + tol


BOXES = np.array([[10, 12, 60, 40], [80, 20, 110, 90], [30, 60, 70, 100]], dtype=np.float64)
SHAPE = (120, 140)


# ---------------------------------------------------------------------------------------------
def test_box_candidates_hand_cases():
    before = np.array([[0, 0, 10, 10]] * 6 + [[0, 0, 60, 4]] * 2, dtype=np.float64)
    after = np.array([
        [0, 0, 10, 10],  # unchanged: kept
        [0, 0, 2, 10],  # w = 2, not > 2: dropped
        [0, 0, 3, 3],  # area 9 / 100 = 0.09 <= 0.2: dropped
        [0, 0, 5, 5],  # area 0.25 and w, h = 5 > 2: kept
        [0, 0, 10, 4.5],  # area 0.45, aspect 2.2: kept
        [5, 5, 5, 5],  # no area: dropped
        [0, 0, 60, 4],  # aspect 15 < 20: kept
        [0, 0, 90, 4],  # aspect 22.5: dropped
    ], dtype=np.float64)
    assert YT.box_candidates(before, after).tolist() == [True, False, False, True, True, False, True, False]
    # MixUp's threshold is 5 px: 5 is not enough, 6 is
    keep = YT.box_candidates(np.array([[0, 0, 5, 6], [0, 0, 6, 6]], float), np.array([[0, 0, 5, 6], [0, 0, 6, 6]], float),
                             min_size=5.0)
    assert keep.tolist() == [False, True]


def test_resize_to_fit_keeps_boxes_on_their_pixels():
    for k, box in enumerate(BOXES):
        image, boxes = YT.resize_to_fit(_mask_image(SHAPE, box), BOXES, 640)
        assert max(image.shape[:2]) == 640 and image.shape[:2] == (548, 640)  # 120 x 140 * 640/140
        _assert_box_on_mask(boxes[k], image)


def _tiles(rng):
    """Four images of different sizes, boxes and unique classes."""
    tiles = []
    for t, shape in enumerate([(300, 400), (500, 260), (640, 640), (200, 500)]):
        h, w = shape
        boxes = np.array([[0.1 * w, 0.1 * h, 0.4 * w, 0.5 * h], [0.6 * w, 0.55 * h, 0.95 * w, 0.9 * h],
                          [0.45 * w, 0.05 * h, 0.55 * w, 0.3 * h]]).round()
        tiles.append((shape, boxes, np.arange(3) + 10 * t))
    return tiles


def test_mosaic_places_tiles_around_the_centre_and_boxes_follow_the_pixels():
    tiles = _tiles(None)
    center = (700, 560)
    colored = []
    for t, (shape, boxes, classes) in enumerate(tiles):
        image = np.full((*shape, 3), 40 * (t + 1), dtype=np.uint8)
        colored.append((image, boxes, classes))
    canvas, _, _ = YT.mosaic(colored, center, 640)
    xc, yc = center
    # the tiles meet at the centre: top-left ends at (xc, yc), bottom-right starts there
    assert canvas[yc - 1, xc - 1, 0] == 40 and canvas[yc - 1, xc, 0] == 80
    assert canvas[yc, xc - 1, 0] == 120 and canvas[yc, xc, 0] == 160
    assert canvas.shape == (1280, 1280, 3) and canvas[0, 0, 0] == 0  # fill 0 outside the tiles

    for t, (shape, boxes, classes) in enumerate(tiles):
        for k in range(len(boxes)):
            images = [(np.zeros((*s, 3), np.uint8), b, c) for s, b, c in tiles]
            images[t] = (_mask_image(shape, boxes[k]), boxes, classes)
            canvas, out_boxes, out_classes = YT.mosaic(images, center, 640)
            if classes[k] in out_classes:
                _assert_box_on_mask(out_boxes[list(out_classes).index(classes[k])], canvas, tol=0)
            else:
                assert _extent(canvas) is None  # dropped only if none of its pixels is on the canvas


def test_mosaic_drops_boxes_cut_off_by_the_canvas_instead_of_keeping_them_without_area():
    image = np.zeros((400, 400, 3), np.uint8)
    # with the centre at (320, 320), the top-left tile loses its 80 leftmost columns
    boxes = np.array([[10.0, 100, 60, 200], [100, 100, 200, 200]])
    tiles = [(image, boxes, np.array([0, 1]))] + [(image, np.zeros((0, 4)), np.zeros(0, np.int64))] * 3
    _, out_boxes, out_classes = YT.mosaic(tiles, (320, 320), 640)
    assert out_classes.tolist() == [1]
    np.testing.assert_allclose(out_boxes, [[20, 20, 120, 120]])


@pytest.mark.parametrize("angle,scale,shear,translation", [
    (10.0, 1.0, (0.0, 0.0), (0.5, 0.5)),
    (-10.0, 0.5, (2.0, -2.0), (0.4, 0.6)),
    (3.0, 1.9, (-1.0, 1.5), (0.6, 0.45)),
])
def test_random_affine_boxes_are_the_hull_of_the_warped_box_pixels(angle, scale, shear, translation):
    shape = (1280, 1280)
    boxes = np.array([[500, 520, 700, 640], [620, 700, 760, 900], [560, 600, 600, 620]], dtype=np.float64)
    classes = np.arange(3)
    matrix = YT.affine_matrix(input_size=shape, output_size=(640, 640), angle=angle, scale=scale,
                              shear=shear, translation=translation)
    for k in range(3):
        warped, out_boxes, out_classes = YT.warp_affine(_mask_image(shape, boxes[k]), boxes, classes, matrix,
                                                        scale=scale, output_size=(640, 640))
        assert warped.shape == (640, 640, 3)
        if k in out_classes:
            box = out_boxes[list(out_classes).index(k)]
            inside = box[0] > TOL and box[1] > TOL and box[2] < 640 - TOL and box[3] < 640 - TOL
            _assert_box_on_mask(box, warped, exact=inside)


def test_affine_drops_boxes_below_the_size_area_and_aspect_limits():
    shape = (1280, 1280)
    # a 4 px box shrunk 0.5x is 2 px wide: dropped; a 100 x 6 box shrunk 0.5x is 50 x 3: kept
    boxes = np.array([[600, 600, 604, 640], [600, 700, 700, 706]], dtype=np.float64)
    matrix = YT.affine_matrix(input_size=shape, output_size=(640, 640), angle=0, scale=0.5, shear=(0, 0),
                              translation=(0.5, 0.5))
    _, out_boxes, out_classes = YT.warp_affine(np.zeros((*shape, 3), np.uint8), boxes, np.arange(2), matrix,
                                               scale=0.5, output_size=(640, 640))
    assert out_classes.tolist() == [1]
    np.testing.assert_allclose(out_boxes, [[320 + (600 - 640) / 2, 320 + 30, 320 + 30, 320 + 33]])


def test_mixup_partner_boxes_follow_the_pixels_through_letterbox_jitter_and_crop():
    partner_shape = (300, 500)
    partner_boxes = np.array([[50, 40, 200, 150], [300, 100, 480, 280]], dtype=np.float64)
    base = np.zeros((640, 640, 3), np.uint8)
    for jitter, offset in [(0.8, (0, 0)), (1.3, (100, 50)), (1.6, (383, 383))]:
        for k in range(2):
            canvas, canvas_boxes = YT.mixup_partner_canvas(_mask_image(partner_shape, partner_boxes[k]), partner_boxes,
                                                           input_size=(640, 640), jitter=jitter)
            assert canvas.shape[:2] == (int(640 * jitter),) * 2
            image, boxes, classes = YT.mixup(base, np.zeros((0, 4)), np.zeros(0, np.int64), canvas, canvas_boxes,
                                             np.array([7, 8]), offset=offset)
            if 7 + k in classes:
                _assert_box_on_mask(boxes[list(classes).index(7 + k)], image)


def test_mixup_blends_half_and_half_only_when_a_partner_box_survives():
    image = np.full((640, 640, 3), 200, np.uint8)
    partner = np.full((640, 640, 3), 100, np.uint8)
    boxes = np.array([[10.0, 10, 50, 50]])
    blended, out_boxes, classes = YT.mixup(image, boxes, np.array([1]), partner, np.array([[100.0, 100, 200, 200]]),
                                           np.array([2]), offset=(0, 0))
    assert (blended == 150).all() and classes.tolist() == [1, 2]
    # 0.5 x 201 + 0.5 x 100 = 150.5, truncated to 150 as the reference's float blend + uint8 cast
    odd, _, _ = YT.mixup(image + 1, boxes, np.array([1]), partner, np.array([[100.0, 100, 200, 200]]),
                         np.array([2]), offset=(0, 0))
    assert (odd == 150).all()
    # the only partner box lies outside the crop: no blend, no box
    same, out_boxes, classes = YT.mixup(image, boxes, np.array([1]), np.full((900, 900, 3), 100, np.uint8),
                                        np.array([[700.0, 700, 800, 800]]), np.array([2]), offset=(0, 0))
    assert (same == 200).all() and classes.tolist() == [1]


def test_mixup_partner_is_never_flipped():
    mapper = YOLOXTrainMapper(no_aug=True)  # _mixup needs no dataset
    partner_box = np.array([[40.0, 60, 160, 140]])  # in the left part of a 300 x 400 image
    partner = (_mask_image((300, 400), partner_box[0]), partner_box, np.array([5]))
    base = np.zeros((640, 640, 3), np.uint8)
    kept = 0
    for seed in range(20):
        # the draws _mixup makes: jitter, then the crop offsets (y, x) in the jittered canvas
        rng = np.random.RandomState(seed)
        jitter = rng.uniform(0.8, 1.6)
        side = int(640 * jitter)
        y0 = rng.randint(0, side - 640) if side > 640 else 0
        x0 = rng.randint(0, side - 640) if side > 640 else 0
        # unflipped: letterbox scale 640 / 400 = 1.6, times the jitter, minus the crop offset
        unflipped = np.clip(partner_box[0] * 1.6 * jitter - [x0, y0, x0, y0], 0, 640)
        image, boxes, classes = mapper._mixup(base, np.zeros((0, 4)), np.zeros(0, np.int64), partner,
                                              np.random.RandomState(seed))
        if 5 in classes:
            kept += 1
            np.testing.assert_allclose(boxes[0], unflipped, atol=1e-9)
            _assert_box_on_mask(boxes[0], image)
    assert kept >= 10


def test_hsv_jitter_equals_the_per_pixel_formula():
    rng = np.random.RandomState(0)
    image = rng.randint(0, 256, (32, 48, 3)).astype(np.uint8)
    gains = np.array([1.012, 0.5, 1.3])
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.float64)
    hsv[..., 0] = np.mod(hsv[..., 0] * gains[0], 180)
    hsv[..., 1:] = np.clip(hsv[..., 1:] * gains[1:], 0, 255)
    expected = cv2.cvtColor(np.floor(hsv).astype(np.uint8), cv2.COLOR_HSV2BGR)
    np.testing.assert_array_equal(YT.hsv_jitter(image, gains), expected)
    # a gray pixel keeps no hue and no saturation: only its value is scaled
    gray = np.full((2, 2, 3), 100, np.uint8)
    np.testing.assert_array_equal(YT.hsv_jitter(gray, [1.01, 1.7, 1.2]), np.full((2, 2, 3), 120, np.uint8))


def test_horizontal_flip_mirrors_boxes_with_their_pixels():
    for k, box in enumerate(BOXES):
        image, boxes = YT.horizontal_flip(_mask_image(SHAPE, box), BOXES)
        _assert_box_on_mask(boxes[k], image, tol=0)
    np.testing.assert_allclose(YT.horizontal_flip(np.zeros((5, 140, 3), np.uint8), BOXES[:1])[1], [[80, 12, 130, 40]])


def test_resize_longest_side_pads_to_a_square_at_the_top_left_and_drops_tiny_boxes():
    image = np.full((120, 140, 3), 255, np.uint8)
    tiny = np.array([[0, 0, 1.1, 50]])  # 1.1 px wide, 1.1 x 480 / 140 = 3.8 px after: kept
    out, boxes, classes = YT.resize_longest_side_and_pad(image, np.concatenate([BOXES, tiny]), np.arange(4), 480)
    assert out.shape == (480, 480, 3)
    content_h = round(120 * 480 / 140)  # 411
    assert (out[:content_h] == 255).all() and (out[content_h:] == 0).all()
    np.testing.assert_allclose(boxes[0], BOXES[0] * 480 / 140)
    assert classes.tolist() == [0, 1, 2, 3]
    _, _, classes = YT.resize_longest_side_and_pad(image, np.array([[0, 0, 0.25, 50], [0, 0, 1.0, 50]]),
                                                   np.arange(2), 480)
    assert classes.tolist() == [1]  # 0.25 x 3.43 = 0.86 px: dropped
    for k, box in enumerate(BOXES):
        out, boxes, _ = YT.resize_longest_side_and_pad(_mask_image(SHAPE, box), BOXES, np.arange(3), 800)
        _assert_box_on_mask(boxes[k], out)


# ---------------------------------------------------------------------------------------------
def _sample_pool():
    """The sampled image, 3 mosaic partners and the MixUp partner: (shape, boxes, classes)."""
    pool = []
    for t, shape in enumerate([(480, 640), (427, 640), (640, 480), (360, 360), (500, 375)]):
        h, w = shape
        boxes = np.array([[0.08 * w, 0.1 * h, 0.35 * w, 0.45 * h], [0.55 * w, 0.5 * h, 0.9 * w, 0.92 * h],
                          [0.4 * w, 0.05 * h, 0.6 * w, 0.3 * h], [0.1 * w, 0.6 * h, 0.3 * w, 0.95 * h]]).round()
        pool.append((shape, boxes, np.arange(4) + 10 * t))
    return pool


@pytest.mark.parametrize("no_aug", [False, True])
def test_whole_pipeline_keeps_every_box_on_its_pixels(no_aug):
    mapper = YOLOXTrainMapper(no_aug=True)
    mapper.no_aug = no_aug  # the pipeline only; partners are passed in
    pool = _sample_pool()
    checked = 0
    for seed in range(2 if no_aug else 3):
        for t, (shape, boxes, classes) in enumerate(pool):
            for k in range(len(boxes)):
                arrays = [(np.zeros((*s, 3), np.uint8), b, c) for s, b, c in pool]
                arrays[t] = (_mask_image(shape, boxes[k]), boxes, classes)
                image, out_boxes, out_classes = mapper.augment(arrays[0], arrays[1:], rng=np.random.RandomState(seed))
                size = image.shape[0]
                assert image.shape == (size, size, 3) and size % 32 == 0 and 480 <= size <= 800
                if classes[k] not in out_classes:
                    continue
                box = out_boxes[list(out_classes).index(classes[k])]
                inside = box[0] > TOL and box[1] > TOL and box[2] < size - TOL and box[3] < size - TOL
                _assert_box_on_mask(box, image, exact=inside)
                checked += 1
    assert checked >= (25 if not no_aug else 8)


def test_training_sizes_are_multiples_of_32_from_480_to_800():
    mapper = YOLOXTrainMapper(no_aug=True)
    sample = (np.zeros((60, 80, 3), np.uint8), BOXES[:1] / 2, np.array([0]))
    rng = np.random.RandomState(0)
    sizes = {mapper.augment(sample, None, rng=rng)[0].shape[0] for _ in range(300)}
    assert sizes == set(range(480, 801, 32))


def _write_dataset(root, n=4):
    dicts = []
    rng = np.random.RandomState(0)
    for i in range(n):
        h, w = 90 + 10 * i, 120
        image = rng.randint(0, 256, (h, w, 3)).astype(np.uint8)
        path = str(root / f"{i}.png")
        cv2.imwrite(path, image)
        dicts.append({"file_name": path, "image_id": i, "height": h, "width": w, "annotations": [
            {"bbox": [10, 10, 40, 30], "bbox_mode": BoxMode.XYWH_ABS, "category_id": i % 3},
            {"bbox": [60, 40, 50, 40], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 2, "iscrowd": 0},
        ]})
    return dicts


def test_mapper_output_is_a_bgr_uint8_square_with_instances(tmp_path):
    dicts = _write_dataset(tmp_path)
    np.random.seed(0)
    out = YOLOXTrainMapper(dataset_dicts=dicts)(dicts[0])
    image = out["image"]
    assert image.dtype == torch.uint8 and image.shape[0] == 3 and image.shape[1] == image.shape[2]
    assert out["instances"].image_size == tuple(image.shape[1:])
    assert out["instances"].gt_classes.dtype == torch.int64 and "annotations" not in out
    # no_aug: the sampled image only, resized and flipped; BGR as read by OpenCV
    np.random.seed(1)
    mapper = YOLOXTrainMapper(no_aug=True, hsv_gains=(0, 0, 0), flip_prob=0.0)
    out = mapper(dicts[1])
    size = out["image"].shape[1]
    expected = cv2.resize(cv2.imread(dicts[1]["file_name"]), None, fx=size / 120, fy=size / 120,
                          interpolation=cv2.INTER_LINEAR)
    got = out["image"].permute(1, 2, 0).numpy()[: expected.shape[0]]
    # HSV with gains 1 is a round trip through 8-bit HSV: within a few levels of the original
    assert np.abs(got.astype(int) - expected.astype(int)).mean() < 3
    np.testing.assert_allclose(out["instances"].gt_boxes.tensor[0].numpy(), np.array([10, 10, 50, 40]) * size / 120,
                               rtol=1e-6)


def test_a_partner_that_fails_to_load_raises_an_error_naming_its_file(tmp_path):
    dicts = _write_dataset(tmp_path)
    dicts[2]["file_name"] = str(tmp_path / "missing.jpg")
    mapper = YOLOXTrainMapper(dataset_dicts=dicts[1:3] * 10)  # partners: mostly the missing one
    with pytest.raises(OSError, match="missing.jpg"):
        for seed in range(10):
            np.random.seed(seed)
            mapper(dicts[0])


def test_a_sample_that_loses_every_box_is_background_and_counted(tmp_path):
    dicts = _write_dataset(tmp_path, n=1)
    # shrink everything below the affine's 2 px and MixUp's 5 px limits: every box is dropped
    mapper = YOLOXTrainMapper(dataset_dicts=dicts, scale=(0.005, 0.0051), mixup_scale=(0.01, 0.011))
    np.random.seed(0)
    out = mapper(dicts[0])
    assert len(out["instances"]) == 0 and out["instances"].gt_boxes.tensor.shape == (0, 4)
    assert mapper.num_background == 1 and mapper.num_samples == 1


def test_detectron2_loader_with_repeat_factor_sampling_yields_batches(tmp_path):
    dicts = _write_dataset(tmp_path)
    loader = build_detection_train_loader(
        dicts, mapper=YOLOXTrainMapper(dataset_dicts=dicts),
        sampler=RepeatFactorTrainingSampler(torch.tensor([1.0, 2.0, 1.0, 3.0])),
        total_batch_size=2, aspect_ratio_grouping=False, num_workers=0,
    )
    batch = next(iter(loader))
    assert len(batch) == 2
    for d in batch:
        assert d["image"].shape[1] == d["image"].shape[2] and d["image"].shape[1] % 32 == 0


def test_mapper_without_partners_is_refused_unless_no_aug():
    with pytest.raises(ValueError, match="dataset_dicts"):
        YOLOXTrainMapper()


def test_test_mapper_resizes_the_longest_side_to_640_and_the_model_pads_to_640_at_the_top_left(tmp_path):
    cfg = LazyConfig.load(str(REPO / "configs/efl_yolox_ip_s_300e_rfs.py"))
    mapper = instantiate(cfg.dataloader.test.mapper)
    rng = np.random.RandomState(0)
    image = rng.randint(0, 256, (300, 500, 3)).astype(np.uint8)
    path = str(tmp_path / "test.png")
    cv2.imwrite(path, image)
    out = mapper({"file_name": path, "image_id": 0, "height": 300, "width": 500})
    assert tuple(out["image"].shape) == (3, 384, 640)
    # Detectron2's ResizeShortestEdge(640, max_size=640) on the BGR image, nothing else
    expected = T.ResizeShortestEdge(640, max_size=640).get_transform(image).apply_image(image)
    np.testing.assert_array_equal(out["image"].permute(1, 2, 0).numpy(), expected)

    cfg.model.num_classes = 4
    model = instantiate(cfg.model).eval()
    padded = model.preprocess_image([out]).tensor
    assert tuple(padded.shape) == (1, 3, 640, 640)
    torch.testing.assert_close(padded[0, :, :384], out["image"].float())
    assert (padded[0, :, 384:] == 0).all()
