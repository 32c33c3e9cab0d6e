"""The fine-grained taxonomy of the synthetic long-tailed set (preset "fine_grained").

LVIS's rare classes are mostly fine-grained relatives of frequent ones (a breed, a model, a variant
of a common object). Every instance of the frequent relative is then a hard negative for the rare
class: the rare classifier fires on it and receives negative gradient far more often than it sees a
positive. This is the imbalance of positive to negative gradient that EFL measures and corrects
(`docs/synthetic_dataset.md`).

The taxonomy reproduces that structure in miniature. It has `num_parents` families, each made of
- a parent class, a (shape, colour, texture) triple with a shape and colour pair of its own, and
- `siblings_per_parent` sibling classes with the parent's shape, colour and texture and one subtle
  attribute (`render.ShapeVariant`): the first a small hole ("holed"), the second a flatter
  aspect ratio ("stretched").
The parents take the most frequent ranks of LVIS's long tail (`classes.design_image_counts`), the
siblings the others, so the frequent classes are parents and the rare and common ones are siblings.
"""
import numpy as np

from .classes import COLORS, SHAPES, TEXTURES, design_image_counts
from .render import ShapeVariant

__all__ = ["ATTRIBUTES", "fine_grained_design"]

ATTRIBUTES = ("holed", "stretched")
_ATTRIBUTE_WORDS = {
    "holed": "with a small hole in it",
    "stretched": "flattened to a wider aspect ratio",
}


def _description(name, definition, parent_id, attribute):
    return {
        "name": name,
        "synonyms": [name],
        "synset": f"{name}.n.01",
        "def": definition,
        # Not LVIS fields (the LVIS API and Detectron2 ignore them): the taxonomy, for analysis.
        "parent_id": parent_id,
        "attribute": attribute,
    }


def fine_grained_design(spec):
    """
    The classes of a `FineGrainedLTSpec`.

    Class ids are family-major: family f holds the parent, id f × (1 + S) + 1, followed by its S
    siblings (S = `spec.siblings_per_parent`).

    Returns:
        factors: list of (shape, colour name, texture) per class; a sibling's shape is a
            `ShapeVariant` of its parent's shape.
        train_counts: (num_classes,) int64, training images that contain each class.
        descriptions: list of dicts, the LVIS category fields (name, synonyms, synset, def) and
            `parent_id` (None for a parent) and `attribute` (None for a parent).
    """
    family = 1 + spec.siblings_per_parent
    num_parents = spec.num_classes // family
    pairs = [(s, c) for s in SHAPES for c in COLORS]
    if not 1 <= spec.siblings_per_parent <= len(ATTRIBUTES):
        raise ValueError(f"siblings_per_parent must be in [1, {len(ATTRIBUTES)}], got {spec.siblings_per_parent}")
    if spec.num_classes % family or not 1 <= num_parents <= len(pairs):
        raise ValueError(
            f"num_classes ({spec.num_classes}) must be a multiple of 1 + siblings_per_parent ({family}) "
            f"with at most {len(pairs)} families"
        )
    rng = np.random.default_rng([spec.seed, 10])
    parents = [pairs[i] for i in rng.permutation(len(pairs))[:num_parents]]
    textures = rng.integers(len(TEXTURES), size=num_parents)
    strengths = {"holed": spec.hole_radius, "stretched": spec.stretch}

    factors, descriptions = [], []
    for f, ((shape, color), t) in enumerate(zip(parents, textures)):
        texture = TEXTURES[t]
        name = f"{color}_{texture}_{shape}"
        parent_id = f * family + 1
        factors.append((shape, color, texture))
        descriptions.append(_description(name, f"a {color} {shape} with a {texture} fill", None, None))
        for attribute in ATTRIBUTES[: spec.siblings_per_parent]:
            factors.append((ShapeVariant(shape, attribute, float(strengths[attribute])), color, texture))
            descriptions.append(
                _description(
                    f"{name}_{attribute}",
                    f"a {color} {shape} with a {texture} fill, {_ATTRIBUTE_WORDS[attribute]}",
                    parent_id,
                    attribute,
                )
            )

    # LVIS's long tail by rank; the parents take the top ranks, in a seeded order.
    by_rank = np.sort(
        design_image_counts(spec.num_classes, spec.num_train_images, spec.seed, head_fraction=spec.head_fraction)
    )[::-1]
    is_parent = np.arange(spec.num_classes) % family == 0
    train_counts = np.empty(spec.num_classes, np.int64)
    train_counts[is_parent] = by_rank[:num_parents][rng.permutation(num_parents)]
    train_counts[~is_parent] = by_rank[num_parents:][rng.permutation(spec.num_classes - num_parents)]
    return factors, train_counts, descriptions
