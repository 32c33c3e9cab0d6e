"""The fine-grained preset of the synthetic set (efl.data.synthetic.fine_grained): LVIS's taxonomy
of frequent parents with rare / common siblings that differ in one subtle attribute."""
import collections
import dataclasses
import hashlib
import os

import numpy as np
import pytest
from lvis import LVIS, LVISEval, LVISResults

from efl.data.frequency import lvis_frequency
from efl.data.synthetic import PRESETS, category_metadata, generate
from efl.data.synthetic.fine_grained import fine_grained_design
from efl.data.synthetic.generator import FineGrainedLTSpec
from efl.data.synthetic.render import ShapeVariant, shape_mask

from tests.scripts import load_script

from .conftest import load_json

# 10 families of a parent and two siblings: the 10 parents fill the frequent bucket (> 100 images),
# the siblings the common and rare ones. Small images: about a second to generate.
SMALL = dataclasses.replace(
    PRESETS["fine_grained"], num_classes=30, num_train_images=360, num_val_images=100, image_size=64, seed=5
)
# 4 families, common and rare siblings only: a fraction of a second.
TINY = dataclasses.replace(SMALL, num_classes=12, num_train_images=40, num_val_images=20, head_fraction=0.5,
                           min_val_images_per_class=2, max_classes_per_image=5)


def _digest(root):
    h = hashlib.sha256()
    for directory, _, names in sorted(os.walk(root)):
        for name in sorted(names):
            if name != "generator.json":  # holds the generation time
                path = os.path.join(directory, name)
                h.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synthetic_fg") / "small")
    generate(SMALL, root)
    return root


def _images_of(data):
    images_of = collections.defaultdict(set)
    for a in data["annotations"]:
        images_of[a["category_id"]].add(a["image_id"])
    return images_of


def test_same_seed_gives_identical_bytes_and_another_seed_another_set(tmp_path):
    first, again, other = (str(tmp_path / name) for name in ("first", "again", "other"))
    generate(TINY, first)
    generate(TINY, again)
    assert _digest(again) == _digest(first)
    generate(dataclasses.replace(TINY, seed=6), other)
    assert load_json(other, "train")["annotations"] != load_json(first, "train")["annotations"]


def test_the_tiny_preset_and_the_default_cache_key_are_unchanged_by_the_new_preset(tiny_root):
    # sha256 of the tiny preset's json files and the presets' cache keys as generated before the
    # fine-grained preset existed (OpenCV 5.0.0, numpy 2.4.6: polygon rasterisation and contour
    # tracing are OpenCV's, so another OpenCV may legitimately change these bytes).
    expected = {
        "train": "3aef7bdbe23f1ffdf592f7f080dff3c3d66f8a8339307178b8a57f65fdbec1dd",
        "val": "a60f227dfe4e8dc32bd443fba0785e9bd38dc31e323491af2e62293812645eab",
    }
    for split, digest in expected.items():
        with open(os.path.join(tiny_root, "annotations", f"synthetic_lt_{split}.json"), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest
    assert PRESETS["default"].cache_key() == "synthetic_lt_c48_n800_s0_b6382c5c69"
    assert PRESETS["tiny"].cache_key() == "synthetic_lt_c12_n40_s0_a5c6adb0e9"
    assert PRESETS["fine_grained"].cache_key().startswith("synthetic_fg_c48_n800_s0_")


def test_buckets_follow_lvis_borders_and_parents_are_the_frequent_classes(small_root):
    train = load_json(small_root, "train")
    images_of = _images_of(train)
    for c in train["categories"]:
        n = len(images_of[c["id"]])
        # The json's counts are the images that really hold the class, bucketed at 10 and 100.
        assert c["image_count"] == n >= 1
        assert c["frequency"] == ("r" if n <= 10 else "c" if n <= 100 else "f") == lvis_frequency(n)
        assert c["frequency"] == "f" if c["parent_id"] is None else c["frequency"] in "rc"
    buckets = collections.Counter(c["frequency"] for c in train["categories"])
    assert buckets == {"f": 10, "c": 11, "r": 9}
    # The preset itself, at LVIS's proportions (405 / 461 / 337 of 1203 classes).
    preset = collections.Counter(c["frequency"] for c in category_metadata(PRESETS["fine_grained"]))
    assert preset == {"f": 16, "c": 18, "r": 14}
    for bucket, lvis_share in (("f", 405 / 1203), ("c", 461 / 1203), ("r", 337 / 1203)):
        assert abs(preset[bucket] / 48 - lvis_share) < 0.05
    assert load_json(small_root, "val")["categories"] == train["categories"]


def test_every_parent_has_one_holed_and_one_stretched_sibling_of_its_shape_colour_and_texture():
    factors, counts, descriptions = fine_grained_design(PRESETS["fine_grained"])
    assert len(factors) == len(counts) == len(descriptions) == 48
    parents = {k + 1: f for k, (f, d) in enumerate(zip(factors, descriptions)) if d["parent_id"] is None}
    assert len(parents) == 16
    # Parents have distinct (shape, colour) pairs: siblings of different families never coincide.
    assert len({(s, c) for s, c, _ in parents.values()}) == 16
    children = collections.defaultdict(list)
    for (shape, color, texture), d in zip(factors, descriptions):
        if d["parent_id"] is None:
            continue
        parent_shape, parent_color, parent_texture = parents[d["parent_id"]]
        assert isinstance(shape, ShapeVariant) and shape.attribute == d["attribute"]
        assert (shape.base, color, texture) == (parent_shape, parent_color, parent_texture)
        children[d["parent_id"]].append(d["attribute"])
    assert all(sorted(a) == ["holed", "stretched"] for a in children.values()) and len(children) == 16


@pytest.mark.parametrize("shape", ["circle", "square", "triangle", "star", "plus", "crescent"])
def test_a_holed_sibling_is_its_parent_with_a_small_interior_hole(shape):
    size = 48
    parent = shape_mask(shape, size, np.random.default_rng(3)).astype(bool)
    holed = shape_mask(ShapeVariant(shape, "holed", 0.12), size, np.random.default_rng(3)).astype(bool)
    removed = parent & ~holed
    assert not (holed & ~parent).any()
    # A hole of radius <= 0.12 x 48 = 5.8 px: at most the disk's area, and at least a few pixels.
    assert 4 <= removed.sum() <= np.pi * (0.12 * size + 1) ** 2
    # Interior: every removed pixel's 4-neighbours are inside the parent, so the outline (and the
    # box) is the parent's and only the inside of the object differs.
    ys, xs = np.nonzero(removed)
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        assert parent[ys + dy, xs + dx].all()
    # One compact hole: the removed pixels lie within one diameter of each other.
    assert np.hypot(ys.max() - ys.min(), xs.max() - xs.min()) <= 2 * (0.12 * size + 1) * np.sqrt(2)


@pytest.mark.parametrize("shape", ["circle", "square", "triangle", "star", "plus", "crescent"])
def test_a_stretched_sibling_is_its_parent_flattened_by_the_stretch_factor(shape):
    size = 60

    def extent(mask):
        ys, xs = np.nonzero(mask)
        return ys.max() - ys.min() + 1, xs.max() - xs.min() + 1

    parent = shape_mask(shape, size, np.random.default_rng(4))
    stretched = shape_mask(ShapeVariant(shape, "stretched", 1.5), size, np.random.default_rng(4))
    (ph, pw), (sh, sw) = extent(parent), extent(stretched)
    # Nearest-neighbour row sampling may drop a one-pixel tip: widths agree to a pixel.
    assert abs(sw - pw) <= 1 and sh == pytest.approx(ph / 1.5, abs=1.5)
    assert stretched.sum() == pytest.approx(parent.sum() / 1.5, rel=0.08)


def test_rendered_siblings_show_their_attribute_in_the_generated_annotations(small_root):
    # The attribute survives placement, scale and occlusion: box aspect (w / h) of stretched
    # siblings vs their parents, and filled fraction of the box of holed siblings vs parents.
    train = load_json(small_root, "train")
    categories = {c["id"]: c for c in train["categories"]}
    aspect, fill = collections.defaultdict(list), collections.defaultdict(list)
    for a in train["annotations"]:
        x, y, w, h = a["bbox"]
        c = categories[a["category_id"]]
        family = c["parent_id"] or c["id"]
        aspect[(family, c["attribute"])].append(w / h)
        fill[(family, c["attribute"])].append(a["area"] / (w * h))
    flatter = [np.median(aspect[(f, "stretched")]) / np.median(aspect[(f, None)])
               for f, attr in list(aspect) if attr is None and aspect[(f, "stretched")]]
    assert len(flatter) >= 8 and np.median(flatter) > 1.3
    holed = [np.median(fill[(f, "holed")]) / np.median(fill[(f, None)])
             for f, attr in list(fill) if attr is None and fill[(f, "holed")]]
    assert len(holed) >= 8 and np.median(holed) < 1.0


def test_bad_sibling_numbers_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="siblings_per_parent"):
        fine_grained_design(FineGrainedLTSpec(siblings_per_parent=3, num_classes=48))
    with pytest.raises(ValueError, match=r"num_classes \(47\) must be a multiple of 1 \+ siblings_per_parent \(3\)"):
        category_metadata(FineGrainedLTSpec(num_classes=47))


def test_registered_fine_grained_datasets_carry_the_preset_metadata():
    from detectron2.data import DatasetCatalog, MetadataCatalog

    import efl.data  # noqa: F401  (registers the synthetic sets)

    categories = category_metadata(PRESETS["fine_grained"])
    for split in ("train", "val"):
        name = f"synthetic_fg_{split}"
        assert name in DatasetCatalog.list()
        meta = MetadataCatalog.get(name)
        assert meta.evaluator_type == "lvis"
        assert meta.thing_classes == [c["name"] for c in categories]
        assert meta.class_frequency == [c["frequency"] for c in categories]
        assert os.path.basename(os.path.dirname(os.path.dirname(meta.json_file))) == PRESETS["fine_grained"].cache_key()


def test_a_registered_fine_grained_set_loads_and_the_official_lvis_api_scores_it(tmp_path):
    from detectron2.data import DatasetCatalog

    from efl.data import register_synthetic_lt

    register_synthetic_lt("efl_test_fg", TINY, cache_root=str(tmp_path))
    dicts = DatasetCatalog.get("efl_test_fg_val")  # generates the set, then Detectron2's LVIS loader
    assert len(dicts) == 20
    val_json = os.path.join(tmp_path, TINY.cache_key(), "annotations", "synthetic_lt_val.json")
    gt = LVIS(val_json)
    assert sorted(gt.cats) == list(range(1, 13))
    assert {c["attribute"] for c in gt.cats.values()} == {None, "holed", "stretched"}
    detections = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
                  for a in gt.anns.values()]
    evaluator = LVISEval(gt, LVISResults(gt, detections, max_dets=300), "bbox")
    evaluator.run()
    assert evaluator.get_results()["AP"] == pytest.approx(1.0)


def _ratio_tool():
    return load_script("tools/ratio_by_frequency.py")


def test_ratio_tool_reads_the_saved_buffers_and_buckets_them_by_the_training_json(tmp_path):
    import torch

    root = str(tmp_path / "set")
    generate(TINY, root)
    train_json = os.path.join(root, "annotations", "synthetic_lt_train.json")
    categories = load_json(root, "train")["categories"]
    counts = np.array([c["image_count"] for c in categories], dtype=float)
    # A ratio that rises with the image count, below 1 for the classes in fewer than 4 images.
    pos = torch.tensor(counts / 4.0, dtype=torch.float32)
    neg = torch.ones(len(categories))
    run = tmp_path / "run"
    (run / "efl_statistics").mkdir(parents=True)
    buffers = {"cls_loss": {"pos_grad": pos, "neg_grad": neg, "pos_neg": pos.clamp(0, 1)}}
    torch.save({"iteration": 99, "buffers": buffers}, run / "efl_statistics" / "rank0.pth")
    (row,) = _ratio_tool().main(["--run", f"fg={run},{train_json}", "--output", str(tmp_path / "fig.png")])
    frequency = np.array([c["frequency"] for c in categories])
    assert row["iterations"] == 100 and row["num_classes"] == 12
    assert row["median_r"] == pytest.approx(np.median(counts[frequency == "r"] / 4.0), rel=1e-6)
    assert row["median_c"] == pytest.approx(np.median(counts[frequency == "c"] / 4.0), rel=1e-6)
    assert row["rare_below_1"] == int((counts[frequency == "r"] < 4).sum())
    assert row["all_below_1"] == int((counts < 4).sum())
    assert row["spearman"] == pytest.approx(1.0)  # a monotone function of the count
    assert os.path.getsize(tmp_path / "fig.png") > 0
    with pytest.raises(SystemExit, match="rank0.pth is missing"):
        _ratio_tool().main(["--run", f"fg={tmp_path / 'nowhere'},{train_json}"])


def test_spearman_of_the_ratio_tool_matches_hand_computed_ranks_with_ties():
    # x ranks (ties averaged): 1, 2.5, 2.5, 4; y ranks: 2, 1, 3, 4 -> Pearson of the ranks.
    rx, ry = np.array([1, 2.5, 2.5, 4]), np.array([2, 1, 3, 4])
    expected = np.corrcoef(rx, ry)[0, 1]
    assert _ratio_tool().spearman([1, 5, 5, 9], [0.2, 0.1, 0.3, 0.4]) == pytest.approx(expected)
