"""Datasets registered when `efl.data` is imported (as Detectron2 registers its own builtins).

- `synthetic_lt_{train,val}`, `synthetic_lt_tiny_{train,val}`: see `efl.data.register_synthetic`.
- `lvis_v1_{train,val}_efl`: LVIS v1 under `$EFL_LVIS_ROOT`, see `efl.data.lvis`.
Detectron2's own `lvis_v1_train` / `lvis_v1_val` are left as they are.
"""
from .lvis import register_lvis_v1_efl
from .register_synthetic import register_all_synthetic_lt

register_all_synthetic_lt()
register_lvis_v1_efl()
