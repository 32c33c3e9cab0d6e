"""``key=value`` overrides of a LazyConfig that refuse keys the config does not have.

Detectron2's ``LazyConfig.apply_overrides`` merges with OmegaConf, which creates any key it is
given: a typo (``train.max_iters=3``) is stored next to the real key and silently ignored. Here
an override is accepted when

- the key exists in the config (a list index counts when it is in range), or
- its parent is a ``LazyCall`` node (a dict with ``_target_``) and the key is a parameter of
  that callable (or the callable takes ``**kwargs``): such a key is an argument the config did not
  set, and ``instantiate`` will pass it on, or
- it is written ``+key=value`` (Hydra's "add") and its parent exists: a deliberate new key, or
  ``++key=value`` (add or change).

Otherwise it is an :class:`OverrideError` that names the key and the closest existing key.

The value must also fit the type of the config's value for that key, checked before anything runs
(``optimizer.lr=abc`` used to fail inside SGD's constructor, ``train.max_iter=1.5`` at the first
iteration after loading the data): an int key takes an int, a float key an int or a float, a bool
key true/false; ``null`` and interpolations (``${...}``) are accepted everywhere, keys of other
types are not checked (docs/train_net.md, "Overrides").
"""
import difflib
import inspect

from detectron2.config import LazyConfig
from detectron2.utils.registry import locate
from omegaconf import DictConfig, ListConfig

__all__ = ["OverrideError", "apply_overrides", "check_override_key", "check_override_value", "OVERRIDE_HELP"]

OVERRIDE_HELP = """\
Overrides (path.key=value, after the flags) change the LazyConfig, e.g.
    train.max_iter=100 optimizer.lr=0.01 dataloader.train.total_batch_size=8
    train.init_checkpoint=output/run/model_final.pth model.num_classes=48
A key must exist in the config, or be a parameter of the callable its parent LazyCall builds
(e.g. model.test_score_thresh=0.05). +path.key=value adds a new key on purpose, ++path.key=value
adds or changes. A mistyped key is an error naming the closest existing one; a value must fit the
type of the config's value (int keys take ints, float keys ints or floats, bool keys true/false)."""


class OverrideError(KeyError):
    """An override whose key the config does not have, or whose value has the wrong type."""

    def __str__(self):  # KeyError would print the message with quotes around it
        return str(self.args[0])


def _parameters(fn):
    """``(names, takes_var_keyword)`` of a callable's signature."""
    parameters = inspect.signature(fn).parameters.values()
    names = {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return names, any(p.kind is p.VAR_KEYWORD for p in parameters)


def _target_parameters(node):
    """Parameter names accepted by a LazyCall node's target; None when any name may be (an open
    ``**kwargs`` or a signature that cannot be read)."""
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    if target is None:
        return set()
    try:
        target = locate(target) if isinstance(target, str) else target
        if not inspect.isclass(target):
            names, open_kwargs = _parameters(target)
            return None if open_kwargs else names
        # A constructor with **kwargs usually hands them to its base class: follow the MRO until
        # a constructor without them.
        accepted = set()
        for cls in target.__mro__:
            if "__init__" not in vars(cls):
                continue
            if cls is object:
                return None
            names, open_kwargs = _parameters(cls.__init__)
            accepted |= names - {"self"}
            if not open_kwargs:
                return accepted
        return None
    except (TypeError, ValueError, ImportError, AttributeError):
        return None


def _closest(name, candidates, path):
    matches = difflib.get_close_matches(name, [str(c) for c in candidates], n=1, cutoff=0.5)
    if matches:
        return f"; did you mean '{'.'.join(path + [matches[0]])}'?"
    listed = ", ".join(sorted(str(c) for c in candidates)[:12])
    return f"; '{'.'.join(path) or '<config>'}' has: {listed}" if listed else ""


def check_override_key(cfg, key, *, adding=False):
    """Raise :class:`OverrideError` unless ``key`` (a dotted path) may be set in ``cfg`` (see the
    module docstring). ``adding``: the override was written ``+key=value`` or ``++key=value``."""
    parts = key.split(".")
    node = cfg
    for depth, part in enumerate(parts):
        path = parts[:depth]
        last = depth == len(parts) - 1
        if isinstance(node, ListConfig):
            if part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            raise OverrideError(f"override '{key}': '{'.'.join(path)}' is a list of {len(node)} "
                                f"items, '{part}' is not an index of it")
        if not isinstance(node, DictConfig):
            raise OverrideError(f"override '{key}': '{'.'.join(path)}' is a value "
                                f"({type(node).__name__}), not a config with keys")
        # keys() also lists keys whose value is still MISSING ("???"), which `in` does not
        if part in node.keys():
            node = node[part] if not last else None
            continue
        if last and adding:
            return
        accepted = _target_parameters(node)
        if last and (accepted is None or part in accepted):
            return
        candidates = set(k for k in node.keys() if k != "_target_") | (accepted or set())
        what = "key" if last else "parent"
        raise OverrideError(f"override '{key}': the config has no {what} '{'.'.join(parts[:depth + 1])}'"
                            + _closest(part, candidates, path)
                            + (" (write +key=value to add a new key on purpose)" if last else ""))


# (type of the config's value, what an override of it may be, how the message names the type)
_VALUE_TYPES = (
    (bool, (bool,), "a bool, true or false"),
    (int, (int,), "an int"),
    (float, (int, float), "a float or an int"),
)


def _existing_value(cfg, key):
    """``(found, value)`` of ``key`` in ``cfg`` as written (an interpolation is not resolved)."""
    node = cfg
    for part in key.split("."):
        if isinstance(node, ListConfig) and part.isdigit() and int(part) < len(node):
            child = node._get_node(int(part))
        elif isinstance(node, DictConfig) and part in node.keys():
            child = node._get_node(part)
        else:
            return False, None
        if child._is_interpolation() or child._is_missing():
            return False, None
        node = child if isinstance(child, (DictConfig, ListConfig)) else child._value()
    return True, node


def check_override_value(cfg, key, value, written):
    """Raise :class:`OverrideError` when ``value`` (the parsed override ``written``) does not fit
    the type of the config's value for ``key`` (see the module docstring)."""
    found, current = _existing_value(cfg, key)
    if not found or value is None or (isinstance(value, str) and "${" in value):
        return
    for config_type, accepted, name in _VALUE_TYPES:
        # bool is a subclass of int: match the config's value by its exact type
        if type(current) is config_type:
            if type(value) not in accepted:
                given = f"the {type(value).__name__} {value!r}" if not isinstance(value, str) \
                    else f"the string {value!r}"
                raise OverrideError(f"override '{written}': {key} takes {name} (the config has "
                                    f"{current!r}), got {given}")
            return


def apply_overrides(cfg, overrides):
    """Check every override (:func:`check_override_key`), then apply them all with Detectron2's
    ``LazyConfig.apply_overrides``. Returns ``cfg``, changed in place."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from hydra.errors import OverrideParseException

    overrides = list(overrides or [])
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as e:
        # e.g. a flag written after the overrides, which argparse leaves among them
        raise OverrideError(f"cannot parse the overrides {overrides}: {e.message.splitlines()[0]} "
                            "(overrides are path.key=value and come after the flags)") from None
    for override in parsed:
        check_override_key(cfg, override.key_or_group,
                           adding=override.is_add() or override.is_force_add())
        if not override.is_delete() and not override.is_sweep_override():
            check_override_value(cfg, override.key_or_group, override.value(), override.input_line)
    return LazyConfig.apply_overrides(cfg, overrides)
