"""Open Images Challenge 2019 (the 500 boxable classes), in one package (docs/openimages.md):

- `files`: readers of the challenge CSVs and the hierarchy JSON, and the class-label rule of the
  COCO-like JSON;
- `convert`: challenge CSVs -> the COCO-like JSON (tools/convert_openimages.py);
- `datasets`: the JSON as Detectron2 datasets (`oid_challenge_2019_{train,val}_efl` under
  `$EFL_OID_ROOT`), read by the project's one COCO-file reader (`efl.data.annotation_json`);
- `hierarchy`, `metric`, `ground_truth`, `report`: the official challenge metric with EQLv2's
  frequency groups (tools/evaluate_openimages.py);
- `evaluator`: that metric as a Detectron2 evaluator (`efl.evaluation.OpenImagesEvaluator`).

Every malformed input is a `efl.data.DatasetCheckError` naming the file and the line, image or
annotation.
"""
from .convert import convert_challenge_files, write_class_counts_csv
from .datasets import OID_ROOT_ENV, load_openimages_json, register_oid_challenge_2019_efl, register_openimages_json
from .hierarchy import LabelHierarchy

__all__ = [
    "LabelHierarchy",
    "OID_ROOT_ENV",
    "convert_challenge_files",
    "load_openimages_json",
    "register_oid_challenge_2019_efl",
    "register_openimages_json",
    "write_class_counts_csv",
]
