"""Open Images data: the challenge CSVs -> JSON converter, the oid_challenge_2019_*_efl
registration, and their errors on bad input.

The module also holds the hand-built Open-Images-layout fixture that the evaluation and tool tests
import (`write_oid_fixture`, `FIXTURE_PREDICTIONS`, `FIXTURE_EXPECTED`).
"""
import csv
import json
import logging
import os
import re

import pytest

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

import efl.data  # noqa: F401  (registers the datasets)
from efl.data import DatasetCheckError, register_oid_challenge_2019_efl
from efl.data.openimages import convert_challenge_files, load_openimages_json

# Classes, in the order of the class-description file (category ids 1..6).
CLASSES = [
    ("/m/0jbk", "Animal"),
    ("/m/0bt9lr", "Dog"),
    ("/m/0puppy", "Puppy"),
    ("/m/0toy", "Toy"),
    ("/m/0robodog", "Robot dog, toy"),  # a comma inside a display name
    ("/m/07j7r", "Tree"),
]
# Three levels (Animal > Dog > Puppy); "Robot dog" has two parents (Dog and Toy), so it is listed
# twice, as in Open Images' file. The root (Entity) is not a class.
HIERARCHY = {
    "LabelName": "/m/0bl9f",
    "Subcategory": [
        {"LabelName": "/m/0jbk", "Subcategory": [
            {"LabelName": "/m/0bt9lr", "Subcategory": [{"LabelName": "/m/0puppy"}, {"LabelName": "/m/0robodog"}]},
        ]},
        {"LabelName": "/m/0toy", "Subcategory": [{"LabelName": "/m/0robodog"}]},
        {"LabelName": "/m/07j7r"},
    ],
}
# width x height: powers of two, so that normalised <-> pixel conversions are exact
SIZES = {"img_a": (256, 128), "img_b": (128, 256), "img_c": (256, 256)}
BOX_HEADER = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax",
              "IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"]
# ImageID, LabelName, XMin, XMax, YMin, YMax, IsOccluded, IsTruncated, IsGroupOf, IsDepiction, IsInside
BOXES = [
    ("img_a", "/m/0puppy", 0.25, 0.5, 0.25, 0.75, 1, 0, 0, 0, 0),  # P
    ("img_a", "/m/0toy", 0.5, 1.0, 0.0, 1.0, 0, 1, 1, 0, 0),  # T, group-of
    ("img_b", "/m/0robodog", 0.0, 0.5, 0.0, 0.5, 0, 0, 0, 1, 1),  # R
]
# ImageID, LabelName, Confidence (human-verified image-level labels); img_c has no boxes
LABELS = [
    ("img_a", "/m/0puppy", 1), ("img_a", "/m/0toy", 1), ("img_a", "/m/07j7r", 0),
    ("img_b", "/m/0robodog", 1),
    ("img_c", "/m/0bt9lr", 0),
]
TRAIN_COUNTS = {"/m/0jbk": 50, "/m/0bt9lr": 40, "/m/0puppy": 10, "/m/0toy": 30, "/m/0robodog": 20, "/m/07j7r": 5}

# Predictions: ImageID, LabelName, Score, XMin, XMax, YMin, YMax (normalised).
# Expanded ground truth: img_a: Puppy P, Dog P, Animal P, Toy T (group-of); img_b: Robot dog R,
# Dog R, Animal R, Toy R. Verified: img_a {Puppy, Dog, Animal, Toy, Tree(neg)}, img_b {Robot dog,
# Dog, Animal, Toy}, img_c {Dog(neg) and its descendants Puppy, Robot dog}.
FIXTURE_PREDICTIONS = [
    ("img_a", "/m/0bt9lr", 0.9, 0.25, 0.5, 0.25, 0.75),  # Dog on P (expanded): TP
    ("img_c", "/m/0bt9lr", 0.8, 0.0, 0.5, 0.0, 0.5),  # Dog on img_c, verified by the negative label: FP
    ("img_b", "/m/0bt9lr", 0.7, 0.0, 0.5, 0.0, 0.5),  # Dog on R (expanded from Robot dog): TP
    ("img_a", "/m/0jbk", 0.6, 0.25, 0.5, 0.25, 0.75),  # Animal on P (two levels up): TP
    ("img_a", "/m/0toy", 0.5, 0.5, 0.75, 0.0, 0.5),  # inside the group-of box T: absorbed
    ("img_a", "/m/0toy", 0.4, 0.75, 1.0, 0.5, 1.0),  # inside T as well: absorbed (T scores 0.5)
    ("img_a", "/m/0toy", 0.45, 0.0, 0.75, 0.0, 0.5),  # straddles T, IoA 0.25/0.75: FP
    ("img_b", "/m/0toy", 0.3, 0.0, 0.5, 0.0, 0.5),  # Toy on R (second parent of Robot dog): TP
    ("img_a", "/m/0puppy", 0.35, 0.25, 0.5, 0.25, 0.75),  # Puppy on P: TP
    ("img_c", "/m/0puppy", 0.95, 0.0, 0.25, 0.0, 0.25),  # Puppy on img_c (negative Dog expanded down): FP
    ("img_b", "/m/0robodog", 0.2, 0.0, 0.5, 0.0, 0.25),  # IoU with R exactly 0.5: TP
    ("img_a", "/m/07j7r", 0.99, 0.0, 1.0, 0.0, 1.0),  # Tree: verified, but no box anywhere: NaN
    ("img_b", "/m/0puppy", 0.9, 0.0, 0.5, 0.0, 0.5),  # Puppy is not verified on img_b: ignored
    ("img_c", "/m/0puppy", 0.97, 0.5, 0.5, 0.5, 0.75),  # zero width: dropped
    ("img_x", "/m/0bt9lr", 1.0, 0.0, 1.0, 0.0, 1.0),  # image without ground truth: ignored
]
# By hand, per class (entries in score order; AP = area under the precision envelope):
#   Animal: .6 TP; 2 boxes (P, R)                 -> recall 0.5 at precision 1      -> 0.5
#   Dog: .9 TP, .8 FP, .7 TP; 2 boxes             -> 0.5 * 1 + 0.5 * 2/3            -> 0.8333
#   Puppy: .95 FP, .35 TP; 1 box                  -> 1 * 1/2                        -> 0.5
#   Toy: .5 TP (group T), .45 FP, .3 TP; T and R  -> 0.5 * 1 + 0.5 * 2/3            -> 0.8333
#   Robot dog: .2 TP; 1 box                       -> 1.0
#   Tree: no box                                  -> NaN, not in the mean
# mAP = (0.5 + 5/6 + 0.5 + 5/6 + 1) / 5 = 0.7333...
# Groups by training instances: sorted Tree 5, Puppy 10, Robot dog 20, Toy 30, Dog 40, Animal 50,
# six classes in five blocks [Tree, Puppy], [Robot dog], [Toy], [Dog], [Animal].
FIXTURE_EXPECTED = {
    "per_class": {"/m/0jbk": 0.5, "/m/0bt9lr": 5 / 6, "/m/0puppy": 0.5, "/m/0toy": 5 / 6,
                  "/m/0robodog": 1.0, "/m/07j7r": float("nan")},
    "mAP": (0.5 + 5 / 6 + 0.5 + 5 / 6 + 1.0) / 5,
    "mAP0": 0.5, "mAP1": 1.0, "mAP2": 5 / 6, "mAP3": 5 / 6, "mAP4": 0.5,
}


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def write_oid_fixture(root, *, images=True):
    """Write the challenge files (and tiny JPEGs) of the fixture under `root`; return their paths."""
    os.makedirs(root, exist_ok=True)
    paths = {
        "boxes": _write_csv(os.path.join(root, "boxes.csv"), BOX_HEADER, [
            (i, "xclick", label, 1, x0, x1, y0, y1, *flags) for i, label, x0, x1, y0, y1, *flags in BOXES
        ]),
        "labels": _write_csv(os.path.join(root, "labels.csv"), ["ImageID", "Source", "LabelName", "Confidence"],
                             [(i, "verification", label, c) for i, label, c in LABELS]),
        "classes": _write_csv(os.path.join(root, "classes.csv"), None, CLASSES),
        "sizes": _write_csv(os.path.join(root, "sizes.csv"), ["ImageID", "Width", "Height"],
                            [(i, w, h) for i, (w, h) in SIZES.items()]),
        "counts": _write_csv(os.path.join(root, "counts.csv"), ["LabelName", "instance_count"],
                             list(TRAIN_COUNTS.items())),
        "predictions": _write_csv(os.path.join(root, "predictions.csv"),
                                  ["ImageID", "LabelName", "Score", "XMin", "XMax", "YMin", "YMax"],
                                  FIXTURE_PREDICTIONS),
        "hierarchy": os.path.join(root, "hierarchy.json"),
        "image_dir": os.path.join(root, "images"),
    }
    with open(paths["hierarchy"], "w") as f:
        json.dump(HIERARCHY, f)
    if images:
        from PIL import Image

        os.makedirs(paths["image_dir"], exist_ok=True)
        for image_id, (w, h) in SIZES.items():
            Image.new("RGB", (w, h), (90, 120, 150)).save(os.path.join(paths["image_dir"], image_id + ".jpg"))
    return paths


def fixture_coco_results():
    """FIXTURE_PREDICTIONS as a COCO results list (pixel x, y, w, h; category ids 1..6)."""
    category = {mid: k + 1 for k, (mid, _) in enumerate(CLASSES)}
    results = []
    for image_id, label, score, x0, x1, y0, y1 in FIXTURE_PREDICTIONS:
        w, h = SIZES.get(image_id, (64, 64))
        results.append({"image_id": image_id, "category_id": category[label], "score": score,
                        "bbox": [x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h]})
    return results


@pytest.fixture
def oid_files(tmp_path):
    return write_oid_fixture(str(tmp_path / "oid"))


def convert(paths, **kwargs):
    return convert_challenge_files(
        boxes_csv=paths["boxes"], image_labels_csv=paths["labels"], class_descriptions_csv=paths["classes"],
        hierarchy_json=paths["hierarchy"], image_sizes_csv=paths["sizes"], **kwargs,
    )


def test_converter_writes_eqlv2_layout_with_flags_first_label_row_and_unrounded_pixel_boxes(oid_files):
    dataset = convert(oid_files)
    assert [(c["id"], c["freebase_id"], c["name"]) for c in dataset["categories"]] == [
        (k + 1, mid, name) for k, (mid, name) in enumerate(CLASSES)
    ]
    assert [c["instance_count"] for c in dataset["categories"]] == [0, 0, 1, 1, 1, 0]
    images = {im["id"]: im for im in dataset["images"]}
    assert sorted(images) == ["img_a", "img_b", "img_c"]
    # img_a's Puppy label is the FIRST data row of the label file (EQLv2's tool drops it)
    assert images["img_a"]["pos_category_ids"] == [3, 4] and images["img_a"]["neg_category_ids"] == [6]
    assert images["img_c"] == {"id": "img_c", "file_name": "img_c.jpg", "width": 256, "height": 256,
                               "pos_category_ids": [], "neg_category_ids": [2]}
    puppy, toy, robot = dataset["annotations"]
    # P: x 0.25..0.5 of 256 px, y 0.25..0.75 of 128 px
    assert puppy["bbox"] == [64.0, 32.0, 64.0, 64.0] and puppy["area"] == 4096.0
    assert [puppy[k] for k in ("image_id", "category_id", "freebase_id", "iscrowd")] == ["img_a", 3, "/m/0puppy", 0]
    # every flag column of the box file is written (EQLv2's tool writes none of them)
    assert {k: puppy[k] for k in ("isoccluded", "istruncated", "isgroupof", "isdepiction", "isinside")} == {
        "isoccluded": 1, "istruncated": 0, "isgroupof": 0, "isdepiction": 0, "isinside": 0}
    assert toy["isgroupof"] == 1 and toy["istruncated"] == 1
    assert robot["isdepiction"] == 1 and robot["isinside"] == 1
    # a box that is not a whole number of pixels is kept exactly (EQLv2 rounds to 2 decimals)
    with open(oid_files["sizes"], "w") as f:
        f.write("ImageID,Width,Height\nimg_a,300,100\nimg_b,128,256\nimg_c,256,256\n")
    assert convert(oid_files)["annotations"][0]["bbox"][0] == 0.25 * 300


def test_converter_reads_sizes_from_the_images_when_no_size_file(oid_files):
    dataset = convert_challenge_files(
        boxes_csv=oid_files["boxes"], image_labels_csv=oid_files["labels"],
        class_descriptions_csv=oid_files["classes"], image_dir=oid_files["image_dir"],
    )
    assert {im["id"]: (im["width"], im["height"]) for im in dataset["images"]} == SIZES


@pytest.mark.parametrize("file,text,message", [
    ("boxes", "ImageID,LabelName,XMin,XMax,YMin,YMax,IsGroupOf\nimg_a,/m/0cat,0,1,0,1,0\n",
     r"boxes.csv:2: LabelName '/m/0cat' is not one of the 6 classes"),
    ("boxes", "ImageID,LabelName,XMin,XMax,YMin,YMax,IsGroupOf\nimg_a,/m/0toy,0,one,0,1,0\n",
     r"boxes.csv:2: column XMax is not a number: 'one'"),
    ("boxes", "ImageID,LabelName,XMin,XMax,YMin,YMax\nimg_a,/m/0toy,0,1,0,1\n",
     r"boxes.csv: missing column\(s\) IsGroupOf"),
    ("boxes", "ImageID,LabelName,XMin,XMax,YMin,YMax,IsGroupOf\nimg_a,/m/0toy,0,1,0,1,2\n",
     r"boxes.csv:2: column IsGroupOf must be -1, 0 or 1, got '2'"),
    ("labels", "ImageID,Source,LabelName,Confidence\nimg_a,x,/m/0toy,0.5\n",
     r"labels.csv:2: Confidence must be 0 or 1, got '0.5'"),
    ("sizes", "ImageID,Width,Height\nimg_a,256,128\n", r"no size for image img_b"),
])
def test_converter_errors_name_the_file_line_and_value(oid_files, file, text, message):
    with open(oid_files[file], "w") as f:
        f.write(text)
    with pytest.raises(DatasetCheckError, match=message):
        convert(oid_files)


def test_converter_rejects_a_hierarchy_node_that_is_not_a_class(oid_files):
    with open(oid_files["hierarchy"], "w") as f:
        json.dump({"LabelName": "/m/0bl9f", "Subcategory": [{"LabelName": "/m/0cat"}]}, f)
    with pytest.raises(DatasetCheckError, match=r"hierarchy node '/m/0cat'.*not one of the 6 classes"):
        convert(oid_files)


def write_oid_root(root, paths):
    """The $EFL_OID_ROOT layout from the fixture (validation = the fixture, train = the same)."""
    dataset = convert(paths)
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    for split, folder in (("train", "train"), ("val", "validation")):
        with open(os.path.join(root, "annotations", f"openimages_challenge_2019_{split}_bbox.json"), "w") as f:
            json.dump(dataset, f)
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        for image_id in SIZES:
            os.link(os.path.join(paths["image_dir"], image_id + ".jpg"), os.path.join(root, folder, image_id + ".jpg"))
    with open(os.path.join(root, "annotations", "challenge-2019-label500-hierarchy.json"), "w") as f:
        json.dump(HIERARCHY, f)
    _write_csv(os.path.join(root, "annotations", "openimages_challenge_2019_train_class_counts.csv"),
               ["LabelName", "instance_count"], list(TRAIN_COUNTS.items()))
    return dataset


@pytest.fixture
def oid_root(tmp_path, oid_files):
    root = str(tmp_path / "oid_root")
    write_oid_root(root, oid_files)
    register_oid_challenge_2019_efl(root)
    yield root
    register_oid_challenge_2019_efl()  # back to $EFL_OID_ROOT


def test_registered_datasets_load_group_of_boxes_as_ordinary_boxes_with_hierarchy_and_counts(oid_root):
    dicts = DatasetCatalog.get("oid_challenge_2019_train_efl")
    by_id = {d["image_id"]: d for d in dicts}
    assert by_id["img_a"]["file_name"] == os.path.join(oid_root, "train", "img_a.jpg")
    assert (by_id["img_a"]["width"], by_id["img_a"]["height"]) == (256, 128)
    # group-of box T is a training box of class Toy (3) like any other, as in the reference
    assert [(a["category_id"], a["bbox"], a["bbox_mode"], a.get("iscrowd", 0)) for a in by_id["img_a"]["annotations"]] == [
        (2, [64.0, 32.0, 64.0, 64.0], BoxMode.XYWH_ABS, 0), (3, [128.0, 0.0, 128.0, 128.0], BoxMode.XYWH_ABS, 0)]
    assert by_id["img_c"]["annotations"] == []
    meta = MetadataCatalog.get("oid_challenge_2019_train_efl")
    assert meta.thing_classes == [name for _, name in CLASSES]
    assert meta.class_freebase_ids == [mid for mid, _ in CLASSES]
    assert meta.class_instance_count == [0, 0, 1, 1, 1, 0]  # boxes per class in the training JSON
    assert meta.hierarchy == HIERARCHY and meta.evaluator_type == "openimages"
    val = MetadataCatalog.get("oid_challenge_2019_val_efl")
    assert val.image_root == os.path.join(oid_root, "validation")
    assert val.class_counts_file.endswith("openimages_challenge_2019_train_class_counts.csv")


def test_degenerate_boxes_are_counted_and_dropped_and_unknown_categories_name_the_image(oid_root, caplog):
    json_file = os.path.join(oid_root, "annotations", "openimages_challenge_2019_train_bbox.json")
    with open(json_file) as f:
        dataset = json.load(f)
    dataset["annotations"][0]["bbox"][2] = 0.0  # zero-width Puppy box
    with open(json_file, "w") as f:
        json.dump(dataset, f)
    with caplog.at_level(logging.WARNING):
        dicts = load_openimages_json(json_file, os.path.join(oid_root, "train"), "oid_challenge_2019_train_efl")
    assert [a["category_id"] for a in dicts[0]["annotations"]] == [3]
    assert "dropped 1 boxes of zero area" in caplog.text
    dataset["annotations"][1]["category_id"] = 99
    with open(json_file, "w") as f:
        json.dump(dataset, f)
    with pytest.raises(DatasetCheckError, match=r"image img_a, annotation 2 has category 99"):
        load_openimages_json(json_file, os.path.join(oid_root, "train"), "oid_challenge_2019_train_efl")


def test_missing_image_file_and_unset_root_are_errors_naming_them(oid_root, monkeypatch):
    os.remove(os.path.join(oid_root, "validation", "img_b.jpg"))
    with pytest.raises(DatasetCheckError, match=r"image img_b at .*validation/img_b.jpg"):
        DatasetCatalog.get("oid_challenge_2019_val_efl")
    monkeypatch.delenv("EFL_OID_ROOT", raising=False)
    register_oid_challenge_2019_efl()
    with pytest.raises(FileNotFoundError, match="set the environment variable EFL_OID_ROOT"):
        DatasetCatalog.get("oid_challenge_2019_train_efl")


def test_training_split_is_the_argument_not_the_file_name(oid_root, tmp_path):
    # A training file whose name lacks "train" still counts its boxes; a validation file named
    # "..._train_..." does not.
    source = os.path.join(oid_root, "annotations", "openimages_challenge_2019_train_bbox.json")
    renamed = str(tmp_path / "boxes_2019.json")
    os.link(source, renamed)
    images = os.path.join(oid_root, "train")
    load_openimages_json(renamed, images, "efl_test_oid_split", is_train=True)
    assert MetadataCatalog.get("efl_test_oid_split").class_instance_count == [0, 0, 1, 1, 1, 0]
    MetadataCatalog.remove("efl_test_oid_split")
    load_openimages_json(source, images, "efl_test_oid_split", is_train=False)
    assert "class_instance_count" not in MetadataCatalog.get("efl_test_oid_split").as_dict()
    MetadataCatalog.remove("efl_test_oid_split")


def test_categories_without_freebase_id_are_named_by_their_name_in_training_and_evaluation(oid_root):
    # EQLv2's files carry the MID as the category name and no freebase_id.
    from efl.data.openimages.ground_truth import load_ground_truth_json, load_class_counts

    json_file = os.path.join(oid_root, "annotations", "openimages_challenge_2019_val_bbox.json")
    with open(json_file) as f:
        dataset = json.load(f)
    for category in dataset["categories"]:
        category["name"] = category.pop("freebase_id")
    with open(json_file, "w") as f:
        json.dump(dataset, f)
    DatasetCatalog.get("oid_challenge_2019_val_efl")
    mids = [mid for mid, _ in CLASSES]
    assert MetadataCatalog.get("oid_challenge_2019_val_efl").class_freebase_ids == mids
    assert load_ground_truth_json(json_file).mids == mids
    assert load_class_counts(json_file, mids).tolist() == [0, 0, 1, 1, 1, 0]


@pytest.mark.parametrize("corrupt, message", [
    (lambda text: text[: len(text) // 2], r"not valid JSON .*is the file truncated"),
    (lambda text: re.sub(r'"bbox": \[([-0-9.e]+)', r'"bbox": ["\1"', text, count=1),
     r"annotation 1 has a malformed bbox .*its x is the string"),
    (lambda text: text.replace('"images"', '"pictures"', 1), r"no 'images' field"),
])
def test_training_and_evaluation_read_the_json_through_one_reader_with_one_error(oid_root, corrupt, message):
    from efl.data.openimages.ground_truth import load_ground_truth_json

    json_file = os.path.join(oid_root, "annotations", "openimages_challenge_2019_val_bbox.json")
    with open(json_file) as f:
        text = f.read()
    with open(json_file, "w") as f:
        f.write(corrupt(text))
    for read in (lambda: DatasetCatalog.get("oid_challenge_2019_val_efl"), lambda: load_ground_truth_json(json_file)):
        with pytest.raises(DatasetCheckError, match=f"^{json_file}: .*{message}"):
            read()
