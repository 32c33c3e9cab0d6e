"""The Open Images class hierarchy (the challenge's `*-hierarchy.json`) over a list of classes."""
from typing import List, Sequence

__all__ = ["LabelHierarchy"]


class LabelHierarchy:
    """The class hierarchy of the challenge (its `*-hierarchy.json`) over the evaluated classes.

    `ancestors[k]` lists the ancestor classes of class k *with multiplicity*, as the official
    expansion script writes them: a class that occurs several times in the tree (it has several
    parents) appears once per occurrence above each of its descendants, so a box of such a
    descendant is copied to it once per occurrence. The root of the file (Open Images' "Entity")
    is not a class and is skipped, as the official script does.
    """

    def __init__(self, hierarchy, label_names: Sequence[str]):
        """
        Args:
            hierarchy: the hierarchy JSON as a dict: {"LabelName": root, "Subcategory": [...]}.
            label_names: the label (MID) of each evaluated class; the index is the class id.
        """
        if not isinstance(hierarchy, dict) or "LabelName" not in hierarchy:
            raise ValueError("the hierarchy must be a dict with a root 'LabelName' (Open Images' hierarchy JSON)")
        self.label_names = list(label_names)
        index = {name: k for k, name in enumerate(self.label_names)}
        num_classes = len(self.label_names)
        self.ancestors: List[List[int]] = [[] for _ in range(num_classes)]
        descendants = [set() for _ in range(num_classes)]

        def visit(node, path):
            # Returns the classes strictly below this occurrence of `node`.
            below = set()
            for child in node.get("Subcategory", []):
                name = child.get("LabelName")
                if name not in index:
                    raise ValueError(
                        f"hierarchy node {name!r} (under {' > '.join(path)}) is not one of the "
                        f"{num_classes} classes"
                    )
                below.add(index[name])
                below |= visit(child, path + [name])
            if len(path) > 1:  # not the root
                k = index[path[-1]]
                for d in below:
                    self.ancestors[d].append(k)
                descendants[k] |= below
            return below

        visit(hierarchy, [hierarchy["LabelName"]])
        self.descendants: List[List[int]] = [sorted(d) for d in descendants]

    @classmethod
    def flat(cls, label_names):
        """No hierarchy: every class stands alone."""
        return cls({"LabelName": "__root__"}, label_names)
