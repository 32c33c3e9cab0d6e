"""Two-way renaming rules between a reference checkpoint's keys and this project's keys.

A rule is a pair of key templates, e.g. ``("neck.c{l}_lateral.{param}",
"backbone.fpn_lateral{l}.{param}")``: each ``{name}`` matches one piece of the key (the fields
and what they match are in ``FIELDS``) and is copied to the other side. The same rule renames in
both directions, so an error about a key of one side can also name the key of the other side.
"""
import re
from typing import Dict, Iterable, Optional, Sequence, Tuple

__all__ = ["FIELDS", "KeyRule", "RuleSet"]

# field name -> regular expression of the key piece it matches
FIELDS = {
    "n": r"\d+",  # an index in an nn.Sequential / ModuleList
    "k": r"\d+",  # the number of a conv / bn inside a block
    "l": r"\d+",  # a pyramid level
    "param": r"weight|bias",
    "bn": r"weight|bias|running_mean|running_var",
    "stat": r"pos_grad|neg_grad|pos_neg",
    "rest": r".+",  # the remainder of the key (prefix-only rules)
}
_FIELD = re.compile(r"\{(\w+)\}")


def _compile(template: str) -> "re.Pattern[str]":
    pieces, pos = [], 0
    for m in _FIELD.finditer(template):
        pieces.append(re.escape(template[pos:m.start()]))
        name = m.group(1)
        if name not in FIELDS:
            raise KeyError(f"unknown field {{{name}}} in key template {template!r}")
        pieces.append(f"(?P<{name}>{FIELDS[name]})")
        pos = m.end()
    pieces.append(re.escape(template[pos:]))
    return re.compile("".join(pieces) + r"\Z")


class KeyRule:
    """One renaming rule: a reference-side template and a project-side template with the same
    fields."""

    def __init__(self, reference: str, ours: str):
        """
        Args:
            reference: key template on the reference side, e.g. ``"roi_head.iou_pred.{param}"``.
            ours: key template on this project's side, e.g. ``"head.iou_pred.{param}"``.
        """
        if sorted(_FIELD.findall(reference)) != sorted(_FIELD.findall(ours)):
            raise ValueError(f"key templates {reference!r} and {ours!r} have different fields")
        self.reference, self.ours = reference, ours
        self._reference_re, self._ours_re = _compile(reference), _compile(ours)

    def to_ours(self, key: str) -> Optional[str]:
        m = self._reference_re.match(key)
        return self.ours.format(**m.groupdict()) if m else None

    def to_reference(self, key: str) -> Optional[str]:
        m = self._ours_re.match(key)
        return self.reference.format(**m.groupdict()) if m else None

    def __repr__(self):
        return f"KeyRule({self.reference!r} -> {self.ours!r})"


class RuleSet:
    """An ordered list of rules; the first rule that matches a key renames it."""

    def __init__(self, rules: Iterable[Tuple[str, str]]):
        """
        Args:
            rules: ``(reference template, our template)`` pairs, tried in order.
        """
        self.rules: Sequence[KeyRule] = [KeyRule(r, o) for r, o in rules]

    def to_ours(self, key: str) -> Optional[str]:
        """Our name of a reference key, or None when no rule places it."""
        for rule in self.rules:
            new = rule.to_ours(key)
            if new is not None:
                return new
        return None

    def to_reference(self, key: str) -> Optional[str]:
        """The reference name of one of our keys, or None when no rule produces it."""
        for rule in self.rules:
            new = rule.to_reference(key)
            if new is not None:
                return new
        return None

    def rename(self, state_dict: Dict[str, object]) -> Tuple[Dict[str, object], list]:
        """``(renamed dict, keys no rule places)``; the order of the input is kept. Two keys
        renamed to the same key are a ValueError naming both."""
        out, origin, unplaced = {}, {}, []
        for key, value in state_dict.items():
            new = self.to_ours(key)
            if new is None:
                unplaced.append(key)
                continue
            if new in out:
                raise ValueError(f"{origin[new]!r} and {key!r} would both become {new!r}")
            out[new], origin[new] = value, key
        return out, unplaced
