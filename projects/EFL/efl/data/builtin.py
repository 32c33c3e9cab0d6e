"""Datasets registered when `efl.data` is imported (as Detectron2 registers its own builtins).

- `synthetic_lt_{train,val}`, `synthetic_lt_tiny_{train,val}`: see `efl.data.register_synthetic`.
- `lvis_v1_{train,val}_efl`: LVIS v1 under `$EFL_LVIS_ROOT`, see `efl.data.lvis`.
- `oid_challenge_2019_{train,val}_efl`: Open Images Challenge 2019 under `$EFL_OID_ROOT`, see
  `efl.data.openimages.datasets`.
Detectron2's own `lvis_v1_train` / `lvis_v1_val` are left as they are.
"""
from .lvis import register_lvis_v1_efl
from .openimages.datasets import register_oid_challenge_2019_efl
from .register_synthetic import register_all_synthetic_lt

register_all_synthetic_lt()
register_lvis_v1_efl()
register_oid_challenge_2019_efl()
