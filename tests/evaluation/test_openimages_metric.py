"""The Open Images Challenge metric (efl.data.openimages.metric): each rule of the official
protocol on a hand-built miniature with the expected AP worked out in the comments, and random
sets checked against an independent implementation of the official code (effdet's NumPy port of
TensorFlow's OpenImagesChallengeEvaluator), with the hierarchy expansion restated from the
official script.

Boxes are (x0, y0, x1, y1); most cases use boxes spanning y 0..1, so IoU is the 1-D IoU of the
x intervals.
"""
import importlib
import importlib.util
import sys
import types

import numpy as np
import pytest

from efl.data.openimages import LabelHierarchy
from efl.data.openimages.metric import (
    OIDDetections,
    OIDGroundTruth,
    evaluate_oid_challenge,
    expand_ground_truth,
    frequency_groups,
    group_mean_ap,
)


def bar(x0, x1):
    return [x0, 0.0, x1, 1.0]


def ap_of(gt, dets, num_classes, hierarchy=None):
    return evaluate_oid_challenge(gt, dets, num_classes=num_classes, hierarchy=hierarchy).ap


# A 3-level hierarchy: 0 Animal > 1 Dog > 2 Puppy; 3 Toy; 4 Robot dog under Dog and under Toy,
# with 5 Robot puppy below it (so Robot dog occurs twice, each time with Robot puppy below).
NAMES = ["animal", "dog", "puppy", "toy", "robodog", "robopuppy", "tree"]
TREE = {"LabelName": "entity", "Subcategory": [
    {"LabelName": "animal", "Subcategory": [{"LabelName": "dog", "Subcategory": [
        {"LabelName": "puppy"},
        {"LabelName": "robodog", "Subcategory": [{"LabelName": "robopuppy"}]}]}]},
    {"LabelName": "toy", "Subcategory": [{"LabelName": "robodog", "Subcategory": [{"LabelName": "robopuppy"}]}]},
    {"LabelName": "tree"},
]}
H = LabelHierarchy(TREE, NAMES)


def test_hierarchy_ancestors_with_multiplicity_and_descendants():
    assert sorted(H.ancestors[2]) == [0, 1]  # puppy: dog, animal
    assert sorted(H.ancestors[4]) == [0, 1, 3]  # robot dog: both parents and animal
    # robot puppy: robot dog once per occurrence (the official script writes it twice)
    assert sorted(H.ancestors[5]) == [0, 1, 3, 4, 4]
    assert H.ancestors[0] == [] and H.ancestors[6] == []  # the root 'entity' is not a class
    assert H.descendants[1] == [2, 4, 5] and H.descendants[3] == [4, 5] and H.descendants[2] == []


def test_box_and_positive_label_expand_to_every_ancestor():
    # image 0: a puppy box; image 1: only a positive "puppy" image-level label.
    gt = OIDGroundTruth.from_lists([0, 1], box_image=[0], box_class=[2], boxes=[bar(0, 10)], box_group_of=[False],
                                   label_image=[1], label_class=[2], label_positive=[True])
    dets = OIDDetections.from_lists(
        image=[0, 0, 1], classes=[0, 1, 1], boxes=[bar(0, 10), bar(0, 10), bar(0, 10)], scores=[0.9, 0.8, 0.95])
    ap = ap_of(gt, dets, 7, H)
    # animal: the box copied two levels up, found: 1.0
    assert ap[0] == 1.0
    # dog on image 1 is verified through the expanded positive label: .95 FP then .8 TP -> 0.5
    assert ap[1] == 0.5
    # without the hierarchy neither class has ground truth
    assert np.isnan(ap_of(gt, dets, 7)[:2]).all()


def test_negative_label_expands_to_descendants_only():
    # image 0: a puppy box; image 1: a negative "dog" label -> dog and puppy (and robot dogs)
    # verified there, animal not.
    gt = OIDGroundTruth.from_lists([0, 1], box_image=[0], box_class=[2], boxes=[bar(0, 10)], box_group_of=[False],
                                   label_image=[1], label_class=[1], label_positive=[False])
    dets = OIDDetections.from_lists(
        image=[0, 1, 0, 1], classes=[2, 2, 0, 0], boxes=[bar(0, 10)] * 4, scores=[0.8, 0.9, 0.5, 0.6])
    ap = ap_of(gt, dets, 7, H)
    assert ap[2] == 0.5  # puppy: .9 FP on image 1 (verified by the negative dog label), .8 TP
    assert ap[0] == 1.0  # animal on image 1 is not verified: ignored; .5 TP on image 0


def test_class_with_two_parents_is_copied_to_both_and_a_descendant_once_per_occurrence():
    # one robot-puppy box: copies to robot dog (twice: it occurs under dog and under toy), dog,
    # toy, animal
    gt = OIDGroundTruth.from_lists([0], box_image=[0], box_class=[5], boxes=[bar(0, 10)], box_group_of=[False])
    expanded = expand_ground_truth(gt, H)
    assert sorted(expanded.box_class.tolist()) == [0, 1, 3, 4, 4, 5]
    dets = OIDDetections.from_lists(image=[0] * 4, classes=[1, 3, 4, 4], boxes=[bar(0, 10)] * 4,
                                    scores=[0.9, 0.9, 0.9, 0.8])
    ap = ap_of(gt, dets, 7, H)
    assert ap[1] == 1.0 and ap[3] == 1.0  # both parents found
    # robot dog has two identical boxes; the second detection also takes the first (argmax ties
    # go to the first box), which is taken: FP. .9 TP, .8 FP over 2 boxes -> 0.5
    assert ap[4] == 0.5


def test_detection_takes_its_argmax_box_and_is_a_false_positive_if_it_is_taken():
    # two boxes [0,10] and [4,14]; d1 = [0,10] takes box 1 (IoU 1). d2 = [1,11]: IoU 9/11 = .82
    # with box 1 (taken), 7/13 = .54 with box 2 (free) -> FP, no fall-back to box 2.
    # .9 TP, .8 FP over 2 boxes: precision 1 at recall .5 -> 0.5 (a fall-back would give 1.0)
    gt = OIDGroundTruth.from_lists([0], box_image=[0, 0], box_class=[0, 0], boxes=[bar(0, 10), bar(4, 14)],
                                   box_group_of=[False, False])
    dets = OIDDetections.from_lists([0, 0], [0, 0], [bar(0, 10), bar(1, 11)], [0.9, 0.8])
    assert ap_of(gt, dets, 1)[0] == 0.5


def test_group_of_box_counts_once_at_the_highest_score_of_its_detections():
    # group-of box [0,20]. Inside (IoA >= .5): d1 [0,4] .9, d2 [5,9] .7, d4 [16,24] .6 (IoA 4/8
    # = .5 exactly). d3 [18,26] .95 straddles with IoA 2/8: FP. d5 [40,50] .8 elsewhere: FP.
    # Entries: .95 FP, .9 TP (the group), .8 FP; 1 box -> precision 1/2 at recall 1 -> 0.5.
    # (Counted at d2's .7 the group would come after .8 -> 1/3; d1, d2, d4 as separate TPs would
    # exceed one box.)
    gt = OIDGroundTruth.from_lists([0], box_image=[0], box_class=[0], boxes=[bar(0, 20)], box_group_of=[True])
    dets = OIDDetections.from_lists(
        [0] * 5, [0] * 5, [bar(0, 4), bar(5, 9), bar(18, 26), bar(16, 24), bar(40, 50)], [0.9, 0.7, 0.95, 0.6, 0.8])
    result = evaluate_oid_challenge(gt, dets, num_classes=1)
    assert result.num_gt[0] == 1 and result.ap[0] == 0.5


def test_true_positive_comes_before_group_of_and_group_with_zero_score_is_dropped():
    # class 0: a box [0,10] inside a group-of box [0,20]; d [0,10] .9 is a TP of the box, not
    # absorbed by the group; the group gets no detection: 2 boxes, recall .5 -> 0.5.
    # class 1: a group-of box whose only detection scores 0: absorbed, but no entry -> 0.0.
    gt = OIDGroundTruth.from_lists([0], box_image=[0, 0, 0], box_class=[0, 0, 1],
                                   boxes=[bar(0, 10), bar(0, 20), bar(0, 20)], box_group_of=[False, True, True])
    dets = OIDDetections.from_lists([0, 0], [0, 1], [bar(0, 10), bar(2, 8)], [0.9, 0.0])
    ap = ap_of(gt, dets, 2)
    assert ap[0] == 0.5 and ap[1] == 0.0


def test_iou_and_ioa_exactly_at_the_threshold_match_and_just_below_do_not():
    # class 0: box [0,10], d [0,5]: IoU 5/10 = 0.5 -> TP -> 1.0
    # class 1: box [0,10], d [0,4]: IoU 0.4 -> FP -> 0.0
    # class 2: group-of [0,10], d [5,15]: IoA 5/10 = 0.5 -> absorbed -> the group TP -> 1.0
    # class 3: group-of [0,10], d [6,16]: IoA 0.4 -> FP -> 0.0
    gt = OIDGroundTruth.from_lists([0], box_image=[0] * 4, box_class=[0, 1, 2, 3], boxes=[bar(0, 10)] * 4,
                                   box_group_of=[False, False, True, True])
    dets = OIDDetections.from_lists([0] * 4, [0, 1, 2, 3], [bar(0, 5), bar(0, 4), bar(5, 15), bar(6, 16)], [0.5] * 4)
    assert ap_of(gt, dets, 4).tolist() == [1.0, 0.0, 1.0, 0.0]


def test_detections_of_unverified_classes_and_unknown_images_are_ignored():
    # image 0 has a class-0 box, image 1 a class-1 box. A class-1 detection on image 0 (.99,
    # class 1 not verified there) and one on an image without ground truth (-1) are ignored:
    # class 1 = .5 TP alone -> 1.0 (counted, the .99 FP would make it 0.5).
    gt = OIDGroundTruth.from_lists([0, 1], box_image=[0, 1], box_class=[0, 1], boxes=[bar(0, 10)] * 2,
                                   box_group_of=[False, False])
    dets = OIDDetections.from_lists([0, -1, 1], [1, 1, 1], [bar(0, 10)] * 3, [0.99, 0.98, 0.5])
    assert ap_of(gt, dets, 2)[1] == 1.0


def test_zero_area_detections_are_dropped():
    # a zero-width and an inverted detection at .99 are dropped; the .5 TP alone -> 1.0
    gt = OIDGroundTruth.from_lists([0], box_image=[0], box_class=[0], boxes=[bar(0, 10)], box_group_of=[False])
    dets = OIDDetections.from_lists([0] * 3, [0] * 3, [bar(3, 3), bar(8, 2), bar(0, 10)], [0.99, 0.99, 0.5])
    assert ap_of(gt, dets, 1)[0] == 1.0


def test_class_without_ground_truth_is_nan_and_left_out_of_the_mean():
    # class 1 verified by a negative label, detected (FP) but without boxes: NaN; class 0: 1.0;
    # class 2 has a box and no detection: 0.0. mAP = (1 + 0) / 2
    gt = OIDGroundTruth.from_lists([0], box_image=[0, 0], box_class=[0, 2], boxes=[bar(0, 10)] * 2,
                                   box_group_of=[False, False], label_image=[0], label_class=[1],
                                   label_positive=[False])
    dets = OIDDetections.from_lists([0, 0], [0, 1], [bar(0, 10)] * 2, [0.9, 0.9])
    result = evaluate_oid_challenge(gt, dets, num_classes=3)
    assert result.ap[0] == 1.0 and np.isnan(result.ap[1]) and result.ap[2] == 0.0
    assert result.mean_ap == 0.5


def test_no_detections_gives_zero_for_classes_with_boxes():
    gt = OIDGroundTruth.from_lists([0], box_image=[0], box_class=[0], boxes=[bar(0, 10)], box_group_of=[False])
    result = evaluate_oid_challenge(gt, OIDDetections.from_lists(), num_classes=2)
    assert result.ap[0] == 0.0 and np.isnan(result.ap[1]) and result.mean_ap == 0.0


@pytest.mark.parametrize("tp_image,expected", [(1, 1.0), (0, 0.5)])
def test_equal_scores_rank_the_entry_of_the_later_image_first(tp_image, expected):
    # a TP and an FP with the same score .5 on images 0 and 1 (1 box). The later image's entry
    # ranks first: TP first -> 1.0; FP first -> precision 1/2 at recall 1 -> 0.5.
    gt = OIDGroundTruth.from_lists([0, 1], box_image=[tp_image], box_class=[0], boxes=[bar(0, 10)],
                                   box_group_of=[False], label_image=[1 - tp_image], label_class=[0],
                                   label_positive=[True])
    dets = OIDDetections.from_lists([0, 1], [0, 0], [bar(0, 10)] * 2, [0.5, 0.5])
    assert ap_of(gt, dets, 1)[0] == expected


def test_at_most_10000_detections_per_class_and_image():
    # 10,000 FPs (.9) outside the box and a TP at .1 ranked 10,001st on its image: cut, -> 0.0
    # (kept, it would give 1/10001); on a second image the same TP alone counts.
    n = 10000
    fp = [bar(20 + i, 21 + i) for i in range(n)]
    gt = OIDGroundTruth.from_lists([0, 1], box_image=[0, 1], box_class=[0, 0], boxes=[bar(0, 10)] * 2,
                                   box_group_of=[False, False])
    dets = OIDDetections.from_lists([0] * (n + 1), [0] * (n + 1), fp + [bar(0, 10)], [0.9] * n + [0.1])
    assert ap_of(gt, dets, 1)[0] == 0.0
    dets_2 = OIDDetections.from_lists([0] * n + [1], [0] * (n + 1), fp + [bar(0, 10)], [0.9] * n + [0.1])
    assert ap_of(gt, dets_2, 1)[0] == pytest.approx(0.5 * 1 / (n + 1))


def test_frequency_groups_sort_by_instance_count_into_five_equal_blocks():
    counts = [50, 3, 7, 7, 100, 1, 20, 9, 30, 2]
    # ascending, ties by class id: 5(1) 9(2) 1(3) 2(7) 3(7) 7(9) 6(20) 8(30) 0(50) 4(100)
    groups = frequency_groups(counts)
    assert [g.tolist() for g in groups] == [[5, 9], [1, 2], [3, 7], [6, 8], [0, 4]]
    ap = np.array([0.8, 0.1, 0.3, np.nan, 0.6, 0.2, 0.5, np.nan, 0.4, np.nan])
    means = group_mean_ap(ap, groups)
    # [0.2, nan] -> 0.2; [0.1, 0.3] -> 0.2; [nan, nan] -> nan; [0.5, 0.4] -> 0.45; [0.8, 0.6] -> 0.7
    assert means[0] == pytest.approx(0.2) and means[1] == pytest.approx(0.2) and np.isnan(means[2])
    assert means[3] == pytest.approx(0.45) and means[4] == pytest.approx(0.7)
    assert [len(g) for g in frequency_groups(np.arange(500))] == [100] * 5


# ---- cross-check against effdet's port of the official TensorFlow code ----------------------


@pytest.fixture(scope="module")
def official():
    """effdet.evaluation (NumPy only) without importing effdet's models (timm): a test dependency
    installed with `pip install --no-deps effdet==0.4.1`."""
    spec = importlib.util.find_spec("effdet")
    assert spec is not None, "the reference needs effdet: pip install --no-deps effdet==0.4.1"
    saved = {k: v for k, v in sys.modules.items() if k == "effdet" or k.startswith("effdet.")}
    package = types.ModuleType("effdet")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["effdet"] = package
    had_float_ = hasattr(np, "float_")
    np.float_ = np.float64  # effdet 0.4.1 predates NumPy 2
    try:
        yield importlib.import_module("effdet.evaluation.detection_evaluator")
    finally:
        for k in [k for k in sys.modules if k == "effdet" or k.startswith("effdet.")]:
            del sys.modules[k]
        sys.modules.update(saved)
        if not had_float_:
            del np.float_


def official_expansion_table(hierarchy):
    """A restatement of the official script's `_build_plain_hierarchy(hierarchy, skip_root=True)`:
    {label: ancestors} and {label: descendants}, lists merged by extending."""
    def build(node, skip_root=False):
        keyed_parent, keyed_child, children = {}, {}, []
        for sub in node.get("Subcategory", []):
            p, c, ch = build(sub)
            for d_out, d_in in ((keyed_parent, p), (keyed_child, c)):
                for k, v in d_in.items():
                    d_out.setdefault(k, []).extend(v)
            children.extend(ch)
        if not skip_root:
            keyed_parent[node["LabelName"]] = children
            children = [node["LabelName"]] + children
            for k in keyed_child:
                keyed_child[k].append(node["LabelName"])
            keyed_child[node["LabelName"]] = []
        return keyed_parent, keyed_child, children

    keyed_parent, keyed_child, _ = build(hierarchy, skip_root=True)
    return keyed_child, keyed_parent


def random_set(seed, *, num_images=40, num_classes=7):
    rng = np.random.default_rng(seed)
    bi, bc, bb, bg, li, lc, lp, di, dc, db, ds = ([] for _ in range(11))
    for i in range(num_images):
        for _ in range(rng.integers(0, 7)):
            x0, y0 = rng.uniform(0, 0.7, 2)
            w, h = rng.uniform(0.05, 0.3, 2)
            bi.append(i), bc.append(rng.integers(num_classes)), bb.append([x0, y0, x0 + w, y0 + h])
            bg.append(rng.uniform() < 0.25)
        for c in rng.choice(num_classes, rng.integers(0, 4), replace=False):
            li.append(i), lc.append(c), lp.append(rng.uniform() < 0.5)
    for k in range(len(bi)):  # jittered copies, some of another class
        for _ in range(rng.integers(0, 4)):
            di.append(bi[k]), dc.append(bc[k] if rng.uniform() < 0.8 else rng.integers(num_classes))
            db.append(np.asarray(bb[k]) + rng.normal(0, 0.03, 4)), ds.append(rng.uniform())
    for _ in range(3 * num_images):  # random boxes, a few of zero width, some on unknown images
        x0, y0 = rng.uniform(0, 0.7, 2)
        w, h = rng.uniform(0, 0.3, 2) * [rng.uniform() > 0.05, 1]
        di.append(rng.integers(-1, num_images)), dc.append(rng.integers(num_classes))
        db.append([x0, y0, x0 + w, y0 + h]), ds.append(rng.uniform())
    gt = OIDGroundTruth.from_lists(range(num_images), box_image=bi, box_class=bc, boxes=bb, box_group_of=bg,
                                   label_image=li, label_class=lc, label_positive=lp)
    return gt, OIDDetections.from_lists(di, dc, db, ds)


def official_ap(module, gt, dets, num_classes, hierarchy=None):
    """AP per class from effdet's OpenImagesChallengeEvaluator, the ground truth expanded row by
    row with the official script's tables (boxes and positive labels up, negative labels down)."""
    up, down = official_expansion_table(hierarchy) if hierarchy else ({}, {})
    index = {name: k for k, name in enumerate(NAMES)}
    evaluator = module.OpenImagesChallengeEvaluator([{"id": k + 1, "name": str(k)} for k in range(num_classes)])
    for i in range(len(gt.image_ids)):
        boxes, classes, group_of, verified = [], [], [], []
        for b in np.flatnonzero(gt.box_image == i):
            for c in [gt.box_class[b]] + [index[p] for p in up.get(NAMES[gt.box_class[b]], [])]:
                boxes.append(gt.boxes[b][[1, 0, 3, 2]]), classes.append(c + 1), group_of.append(gt.box_group_of[b])
        for lab in np.flatnonzero(gt.label_image == i):
            table = up if gt.label_positive[lab] else down
            label = gt.label_class[lab]
            verified += [c + 1 for c in [label] + [index[x] for x in table.get(NAMES[label], [])]]
        evaluator.add_single_ground_truth_image_info(i, {
            "bbox": np.asarray(boxes, dtype=float).reshape(-1, 4), "cls": np.asarray(classes, dtype=int),
            "group_of": np.asarray(group_of, dtype=bool), "img_cls": np.asarray(verified, dtype=int)})
    for i in sorted(set(dets.image.tolist())):
        m = dets.image == i
        evaluator.add_single_detected_image_info(i if i >= 0 else "unknown", {
            "bbox": dets.boxes[m][:, [1, 0, 3, 2]], "score": dets.scores[m], "cls": dets.cls[m] + 1})
    evaluator.evaluate()
    return evaluator._evaluation.average_precision_per_class


@pytest.mark.parametrize("with_hierarchy", [False, True])
def test_random_sets_match_the_official_implementation(official, with_hierarchy):
    hierarchy = TREE if with_hierarchy else None
    checked = 0
    for seed in range(12):
        gt, dets = random_set(seed)
        expected = official_ap(official, gt, dets, len(NAMES), hierarchy)
        ours = ap_of(gt, dets, len(NAMES), H if with_hierarchy else None)
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12, equal_nan=True, err_msg=f"seed {seed}")
        checked += int((~np.isnan(expected)).sum())
    assert checked > 50  # most classes have ground truth: the comparison is not vacuous
