"""The classes of the synthetic long-tailed set and how often each one appears.

A class is a conjunction of three factors, shape × colour × texture ("red striped star"). No single
factor identifies a class: a colour is shared by every shape and texture, so a detector has to look
at the silhouette and at the fill pattern, not at one pixel. Because the factors are shared, a rare
class is a new combination of factors that frequent classes teach, as in LVIS where a rare
"gourd" shares parts with frequent fruits.

The number of training images per class follows LVIS v1's long tail in miniature: the classes,
sorted by frequency, decay log-linearly in rank through the LVIS bucket borders, placed at LVIS's
bucket proportions (405 frequent, 461 common, 337 rare of 1203 classes).
"""
import numpy as np

__all__ = [
    "SHAPES",
    "COLORS",
    "TEXTURES",
    "DISTRACTOR_SHAPES",
    "DISTRACTOR_COLORS",
    "class_factors",
    "design_image_counts",
    "design_val_image_counts",
]

SHAPES = ("circle", "square", "triangle", "star", "plus", "crescent")
# Saturated, well separated hues (RGB); the background and the distractor colours are desaturated.
COLORS = {
    "red": (220, 40, 40),
    "green": (40, 175, 60),
    "blue": (45, 85, 230),
    "yellow": (235, 215, 40),
    "magenta": (205, 50, 200),
    "cyan": (40, 200, 210),
}
TEXTURES = ("solid", "striped", "checkered")

# Distractors are never annotated: either a shape that is not a class shape in a class colour and
# texture, or a class shape in a colour that no class has. A detector must reject both.
DISTRACTOR_SHAPES = ("bar", "ring", "blob")
DISTRACTOR_COLORS = {
    "gray": (128, 128, 128),
    "white": (235, 235, 235),
    "brown": (120, 80, 40),
    "black": (30, 30, 30),
}

# LVIS v1 bucket proportions (classes sorted by train image count): frequent first.
_FREQUENT_FRACTION = 405 / 1203
_RARE_START = (405 + 461) / 1203


def class_factors(num_classes, seed):
    """
    Pick `num_classes` distinct (shape, colour, texture) triples.

    Returns:
        list[tuple[str, str, str]]: the factors of class 0..num_classes-1.
    """
    grid = [(s, c, t) for s in SHAPES for c in COLORS for t in TEXTURES]
    if not 1 <= num_classes <= len(grid):
        raise ValueError(f"num_classes must be in [1, {len(grid)}], got {num_classes}")
    order = np.random.default_rng([seed, 0]).permutation(len(grid))
    return [grid[i] for i in order[:num_classes]]


def design_image_counts(num_classes, num_images, seed, *, head_fraction=0.3):
    """
    Number of training images that contain each class.

    The most frequent class is in `head_fraction` of the images; the counts decay log-linearly in
    rank through 100.5 at LVIS's frequent/common border and 10.5 at its common/rare border, to 1.
    Borders above the head count are left out, so a small set has only common and rare classes.
    Which class gets which rank is a seeded permutation.

    Returns:
        np.ndarray: (num_classes,) int64, every entry in [1, num_images].
    """
    head = max(1.0, round(head_fraction * num_images))
    anchors = [(0.0, head)]
    anchors += [(x, v) for x, v in ((_FREQUENT_FRACTION, 100.5), (_RARE_START, 10.5)) if v < head]
    anchors.append((1.0, 1.0))
    xs, values = zip(*anchors)
    rank_position = np.linspace(0.0, 1.0, num_classes) if num_classes > 1 else np.zeros(1)
    by_rank = np.exp(np.interp(rank_position, xs, np.log(values)))
    by_rank = np.clip(np.round(by_rank), 1, num_images).astype(np.int64)
    rank_of_class = np.random.default_rng([seed, 1]).permutation(num_classes)
    return by_rank[rank_of_class]


def design_val_image_counts(train_counts, num_train, num_val, *, min_count):
    """
    Number of validation images that contain each class: the training proportion, but at least
    `min_count`, so that every rare class is seen often enough to measure APr.
    """
    scaled = np.round(train_counts * (num_val / num_train)).astype(np.int64)
    return np.clip(scaled, min(min_count, num_val), max(1, num_val // 2))
