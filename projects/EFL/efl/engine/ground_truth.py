"""What the dataset checks changed in an evaluation set, compared with the annotation file that
the evaluator scores against.

The evaluator reads the official annotation file as written (that is the benchmark's protocol),
while the test loader's dataset checks (``efl.data.dataset_checks``) clip boxes that stick out of
their image and drop boxes of zero area or entirely outside it. The two disagree exactly on those
boxes, so an evaluation states how many there were, and a dropped box, which no clip explains and
which the evaluator still counts as an object to find, is an error unless asked otherwise
(docs/train_net.md, "Ground truth").
"""
import contextlib
import logging
import os

from detectron2.data import DatasetCatalog, MetadataCatalog

__all__ = ["INVALID_BOX_POLICIES", "GroundTruthError", "audit_evaluation_ground_truth", "describe_audit"]

logger = logging.getLogger(__name__)

# train.eval_invalid_boxes: "error" refuses an evaluation set with boxes the checks drop;
# "report" evaluates anyway (against the file as written) and states their number.
INVALID_BOX_POLICIES = ("error", "report")


class GroundTruthError(ValueError):
    """An evaluation set whose annotation file has boxes that the dataset checks drop."""


@contextlib.contextmanager
def _quiet(*logger_names):
    loggers = [logging.getLogger(name) for name in logger_names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _audit_lvis_json(name, metadata):
    from ..data import annotation_json
    from ..data.dataset_checks import check_dataset_dicts

    json_file = metadata.json_file
    # What the test loader gets, with each annotation's json id and its box as written; the
    # checks change the annotation dicts in place and keep the same objects. The loader and the
    # checks log what the test loader will log again: quiet here.
    with _quiet(annotation_json.__name__, check_dataset_dicts.__module__):
        # LVIS- or COCO-format (own datasets: efl.data.register_lvis_format_dataset), with the
        # dataset's own mapping of file category ids when it has one
        records, _ = annotation_json.dicts_from_annotation_json(
            annotation_json.read_annotation_json(json_file), json_file, metadata.image_root,
            category_id_map=metadata.get("thing_dataset_id_to_contiguous_id", None))
        written = [[(ann, ann.get("id"), list(ann["bbox"])) for ann in r["annotations"]] for r in records]
        check_dataset_dicts(records, num_classes=len(metadata.thing_classes), source=json_file,
                            check_files=False, file_category_offset=1)
    dropped, clipped = [], 0
    for record, before in zip(records, written):
        kept = {id(ann) for ann in record["annotations"]}
        for ann, ann_id, bbox in before:
            if id(ann) not in kept:
                dropped.append((record["image_id"], ann_id, bbox))
            elif [float(v) for v in ann["bbox"]] != [float(v) for v in bbox]:
                clipped += 1
    # own datasets (efl.data.register_lvis_format_dataset) are evaluated through an LVIS-format
    # copy under the cache; messages name the user's own file
    source = metadata.get("source_json_file", None) or json_file
    return {"dataset": name, "json_file": json_file, "source_json_file": source,
            "boxes": sum(len(b) for b in written),
            "clipped": clipped, "dropped": len(dropped), "dropped_examples": dropped[:5]}


def audit_evaluation_ground_truth(dataset_names, *, invalid_boxes="error"):
    """Compare each evaluation set's annotation file with what the dataset checks make of it.

    Args:
        dataset_names: a registered dataset name or a list of them (the test loader's names).
        invalid_boxes: one of ``INVALID_BOX_POLICIES``: what to do when the checks drop boxes.

    Returns:
        list[dict]: per LVIS-format dataset, ``{"dataset", "json_file", "source_json_file",
        "boxes", "clipped", "dropped", "dropped_examples"}`` (examples: ``(image id, annotation
        id, bbox)``; ``json_file`` is the file the evaluator reads, ``source_json_file`` the user's
        file it was made from, the same file unless it is an LVIS-format copy).
        Datasets of other formats are skipped (logged).

    Raises:
        GroundTruthError: with ``invalid_boxes="error"``, naming the user's file, the first
            image and annotation ids and the option.
    """
    if invalid_boxes not in INVALID_BOX_POLICIES:
        raise ValueError(f"train.eval_invalid_boxes must be one of {INVALID_BOX_POLICIES}, got {invalid_boxes!r}")
    names = [dataset_names] if isinstance(dataset_names, str) else list(dataset_names)
    reports = []
    for name in names:
        metadata = MetadataCatalog.get(name)
        fields = metadata.as_dict()
        if fields.get("evaluator_type") != "lvis" or not fields.get("json_file"):
            logger.info(f"{name}: not an LVIS-format dataset; its ground truth is not compared")
            continue
        if not os.path.isfile(metadata.json_file):
            DatasetCatalog.get(name)  # datasets generated on first use (the synthetic set)
        report = _audit_lvis_json(name, metadata)
        if report["dropped"] and invalid_boxes == "error":
            image_id, ann_id, bbox = report["dropped_examples"][0]
            source = report["source_json_file"]
            raise GroundTruthError(
                f"{source}: {report['dropped']} of the {report['boxes']} boxes of the evaluation set "
                f"'{name}' have zero area or lie entirely outside their image (e.g. image {image_id}, "
                f"annotation {ann_id}, bbox {bbox}). The model never sees them, but the evaluator "
                "reads the file as written and counts them as objects to find. "
                f"Fix {source}, or set train.eval_invalid_boxes=report to evaluate against it anyway")
        reports.append(report)
    return reports


def describe_audit(report):
    """One line for the log and the console."""
    source, evaluated = report.get("source_json_file", report["json_file"]), report["json_file"]
    through = f" (through its LVIS-format copy {evaluated})" if evaluated != source else ""
    line = (f"Ground truth of '{report['dataset']}': the evaluator scores against {source} as "
            f"written{through} ({report['boxes']} boxes). The dataset checks clipped "
            f"{report['clipped']} of them to their image")
    if report["dropped"]:
        line += f" and dropped {report['dropped']} (zero area or outside the image)"
    return line + ("; these stay in the evaluated ground truth as written"
                   if report["clipped"] or report["dropped"] else "")
