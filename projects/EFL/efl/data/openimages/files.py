"""Readers of the Open Images Challenge files (CSV and the hierarchy JSON), and the one rule that
names a class of the COCO-like JSON by its label (MID).

Columns are found by name (the challenge releases differ in which optional columns they carry).
Every malformed row is a `DatasetCheckError` naming the file, the line and the column; nothing is
skipped silently. Boxes are returned normalised as in the files, (XMin, YMin, XMax, YMax).
"""
import csv
import json
import math
import os

import numpy as np

from ..dataset_checks import DatasetCheckError

__all__ = [
    "BOX_FLAG_COLUMNS",
    "class_mid",
    "read_box_csv",
    "read_class_counts_csv",
    "read_class_descriptions",
    "read_hierarchy",
    "read_image_labels_csv",
    "read_image_sizes_csv",
    "read_predictions_csv",
]

# attribute columns of the box files, written to the JSON as lower-case keys
BOX_FLAG_COLUMNS = ("IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside")


def class_mid(category):
    """The label (MID) of a category of the COCO-like JSON: its ``freebase_id``; EQLv2's files
    without one name the class by its ``name``."""
    return category.get("freebase_id", category["name"])


def _open(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist")
    return open(path, newline="", encoding="utf-8")


def _rows(path, required):
    """(line number, row dict) of a CSV with a header holding at least `required`."""
    with _open(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise DatasetCheckError(f"{path}: empty file, expected a header with {', '.join(required)}")
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise DatasetCheckError(f"{path}: missing column(s) {', '.join(missing)} (header: {','.join(header)})")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise DatasetCheckError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
            yield line, dict(zip(header, row))


def _number(path, line, column, text):
    try:
        value = float(text)
    except ValueError:
        raise DatasetCheckError(f"{path}:{line}: column {column} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise DatasetCheckError(f"{path}:{line}: column {column} is not finite: {text!r}")
    return value


def _flag(path, line, column, text):
    # -1 marks an unknown attribute in some Open Images releases
    if text.strip() not in ("-1", "0", "1"):
        raise DatasetCheckError(f"{path}:{line}: column {column} must be -1, 0 or 1, got {text!r}")
    return int(text)


def _class(path, line, label, class_index):
    if label not in class_index:
        raise DatasetCheckError(f"{path}:{line}: LabelName {label!r} is not one of the {len(class_index)} classes")
    return class_index[label]


def read_class_descriptions(path):
    """`MID,DisplayName` rows without a header -> (list of MIDs, list of display names)."""
    mids, names = [], []
    with _open(path) as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if not row:
                continue
            if len(row) != 2:
                raise DatasetCheckError(f"{path}:{line}: expected 2 fields (MID,DisplayName), got {len(row)}")
            if line == 1 and row[0] in ("LabelName", "MID"):
                continue  # tolerate a header
            if row[0] in mids:
                raise DatasetCheckError(f"{path}:{line}: class {row[0]!r} is listed twice")
            mids.append(row[0])
            names.append(row[1])
    if not mids:
        raise DatasetCheckError(f"{path}: no classes")
    return mids, names


def read_hierarchy(path):
    """The hierarchy JSON ({"LabelName": ..., "Subcategory": [...]}) as a dict."""
    with _open(path) as f:
        try:
            hierarchy = json.load(f)
        except json.JSONDecodeError as e:
            raise DatasetCheckError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(hierarchy, dict) or "LabelName" not in hierarchy:
        raise DatasetCheckError(f"{path}: expected an object with a root 'LabelName'")
    return hierarchy


def read_box_csv(path, class_index):
    """
    A box file (`ImageID,LabelName,XMin,XMax,YMin,YMax,IsGroupOf` and optionally the other flags).

    Args:
        path: the CSV.
        class_index: {MID: class id}.

    Returns:
        dict with `image_ids` (list), `classes` (M,), `boxes` (M, 4) normalised (x0, y0, x1, y1),
        `lines` (M,) line numbers, and one (M,) int array per flag column present in the file
        (keys lower-case: "isgroupof", ...). `-1` (unknown) is kept as is.
    """
    required = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax", "IsGroupOf")
    image_ids, classes, boxes, lines = [], [], [], []
    flags = None
    for line, row in _rows(path, required):
        if flags is None:
            flags = {c: [] for c in BOX_FLAG_COLUMNS if c in row}
        image_ids.append(row["ImageID"])
        classes.append(_class(path, line, row["LabelName"], class_index))
        boxes.append([_number(path, line, c, row[c]) for c in ("XMin", "YMin", "XMax", "YMax")])
        lines.append(line)
        for c, values in flags.items():
            values.append(_flag(path, line, c, row[c]))
    out = {
        "image_ids": image_ids,
        "classes": np.asarray(classes, dtype=np.int64),
        "boxes": np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        "lines": np.asarray(lines, dtype=np.int64),
    }
    for c, values in (flags or {"IsGroupOf": []}).items():
        out[c.lower()] = np.asarray(values, dtype=np.int64)
    return out


def read_image_labels_csv(path, class_index):
    """Human-verified image-level labels (`ImageID,LabelName,Confidence`, confidence 1 or 0) ->
    (image ids, (L,) class ids, (L,) bool positive)."""
    image_ids, classes, positive = [], [], []
    for line, row in _rows(path, ("ImageID", "LabelName", "Confidence")):
        confidence = row["Confidence"].strip()
        if confidence not in ("0", "1"):
            raise DatasetCheckError(f"{path}:{line}: Confidence must be 0 or 1, got {confidence!r}")
        image_ids.append(row["ImageID"])
        classes.append(_class(path, line, row["LabelName"], class_index))
        positive.append(confidence == "1")
    return image_ids, np.asarray(classes, dtype=np.int64), np.asarray(positive, dtype=bool)


def read_image_sizes_csv(path):
    """{image id: (width, height)} from a CSV whose header names an id column (ImageID / image_id /
    id) and `width`, `height` columns (any case)."""
    with _open(path) as f:
        header = next(csv.reader(f), None) or []
    lowered = [h.strip().lower() for h in header]

    def column(*names):
        for name in names:
            if name in lowered:
                return header[lowered.index(name)]
        raise DatasetCheckError(
            f"{path}: the header needs columns ImageID (or image_id, id), Width, Height; found {','.join(header)}"
        )

    id_col, w_col, h_col = column("imageid", "image_id", "id"), column("width", "w"), column("height", "h")
    sizes = {}
    for line, row in _rows(path, (id_col, w_col, h_col)):
        w, h = _number(path, line, w_col, row[w_col]), _number(path, line, h_col, row[h_col])
        if w <= 0 or h <= 0:
            raise DatasetCheckError(f"{path}:{line}: image {row[id_col]} has no positive size ({w}, {h})")
        sizes[row[id_col]] = (w, h)
    return sizes


def read_predictions_csv(path, class_index):
    """`ImageID,LabelName,Score,XMin,XMax,YMin,YMax` (by column name) -> (image ids, classes,
    (D, 4) normalised boxes, scores)."""
    required = ("ImageID", "LabelName", "Score", "XMin", "XMax", "YMin", "YMax")
    image_ids, classes, boxes, scores = [], [], [], []
    for line, row in _rows(path, required):
        image_ids.append(row["ImageID"])
        classes.append(_class(path, line, row["LabelName"], class_index))
        boxes.append([_number(path, line, c, row[c]) for c in ("XMin", "YMin", "XMax", "YMax")])
        scores.append(_number(path, line, "Score", row["Score"]))
    return (
        image_ids,
        np.asarray(classes, dtype=np.int64),
        np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        np.asarray(scores, dtype=np.float64),
    )


def read_class_counts_csv(path, mids):
    """`LabelName,instance_count` (by column name) -> (C,) counts in the order of `mids`; every
    class must be listed once."""
    index = {m: k for k, m in enumerate(mids)}
    counts = np.full(len(mids), -1, dtype=np.int64)
    for line, row in _rows(path, ("LabelName", "instance_count")):
        k = _class(path, line, row["LabelName"], index)
        if counts[k] >= 0:
            raise DatasetCheckError(f"{path}:{line}: class {row['LabelName']!r} is listed twice")
        value = _number(path, line, "instance_count", row["instance_count"])
        if value < 0 or value != int(value):
            raise DatasetCheckError(f"{path}:{line}: instance_count must be a count, got {row['instance_count']!r}")
        counts[k] = int(value)
    absent = [mids[k] for k in np.flatnonzero(counts < 0)]
    if absent:
        raise DatasetCheckError(f"{path}: no instance_count for {len(absent)} class(es), e.g. {absent[0]!r}")
    return counts
