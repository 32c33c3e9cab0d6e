"""Drawing of the synthetic scenes: cluttered backgrounds, shape masks and textured fills.

Everything is drawn with OpenCV on uint8 RGB arrays from an explicit numpy Generator, so an image
is a pure function of its seed.
"""
import functools
from typing import NamedTuple

import cv2
import numpy as np

__all__ = ["ShapeVariant", "apply_attribute", "draw_background", "shape_mask", "fill_texture", "add_noise"]

# Polygons are rasterised with 4 fractional bits so that small shapes keep their outline.
_SHIFT = 4
_ONE = 1 << _SHIFT


def _fill_polygons(mask, polygons):
    pts = [np.round(np.asarray(p) * _ONE).astype(np.int32) for p in polygons]
    cv2.fillPoly(mask, pts, 1, lineType=cv2.LINE_8, shift=_SHIFT)


def _rotate(points, angle, center):
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    return (np.asarray(points) - center) @ rotation.T + center


def _disk(size, center, radius, axes_ratio=1.0, angle=0.0):
    mask = np.zeros((size, size), np.uint8)
    axes = (int(round(radius * _ONE)), int(round(radius * axes_ratio * _ONE)))
    c = (int(round(center[0] * _ONE)), int(round(center[1] * _ONE)))
    cv2.ellipse(mask, c, axes, np.degrees(angle), 0, 360, 1, -1, cv2.LINE_8, _SHIFT)
    return mask


class ShapeVariant(NamedTuple):
    """A class shape with one fine-grained attribute (the sibling classes of `fine_grained.py`).

    "holed": a round hole of radius `strength` × the object side, punched at the most interior
    point of the shape (a small mark through which the background shows).
    "stretched": the shape squashed vertically to 1 / `strength` of its height (an aspect ratio).
    """

    base: str  # a class shape of classes.SHAPES
    attribute: str  # "holed" or "stretched"
    strength: float


def shape_mask(shape, size, rng):
    """
    A binary mask of `shape` inscribed in a (size, size) square, with a random small rotation
    and aspect jitter. `shape` is a shape name or a `ShapeVariant`, whose attribute is applied
    to the base shape's mask without drawing from `rng` (so a variant and its base shape drawn
    from equal generators differ only in the attribute).

    Returns:
        np.ndarray: (size, size) uint8 in {0, 1}.
    """
    if isinstance(shape, ShapeVariant):
        return apply_attribute(shape_mask(shape.base, size, rng), shape.attribute, shape.strength)
    center = np.array([(size - 1) / 2.0, (size - 1) / 2.0])
    r = size / 2.0 - 0.5
    # Small rotations only: a square must not turn into a diamond, a triangle keeps pointing up.
    angle = rng.uniform(-0.45, 0.45)
    mask = np.zeros((size, size), np.uint8)
    if shape == "circle":
        return _disk(size, center, r, rng.uniform(0.8, 1.0), angle)
    if shape == "square":
        h = r * 0.78
        _fill_polygons(mask, [_rotate([[-h, -h], [h, -h], [h, h], [-h, h]] + center, angle, center)])
    elif shape == "triangle":
        k = np.array([np.pi / 2 + i * 2 * np.pi / 3 for i in range(3)])
        pts = np.stack([np.cos(k), -np.sin(k)], 1) * r + center + [0, r * 0.2]
        _fill_polygons(mask, [_rotate(pts, angle * 0.5, center)])
    elif shape == "star":
        k = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        pts = np.stack([np.cos(k) * radii, -np.sin(k) * radii], 1) + center
        _fill_polygons(mask, [_rotate(pts, angle, center)])
    elif shape == "plus":
        a, b = r * 0.95, r * 0.32
        arms = [[[-a, -b], [a, -b], [a, b], [-a, b]], [[-b, -a], [b, -a], [b, a], [-b, a]]]
        _fill_polygons(mask, [_rotate(np.array(p) + center, angle, center) for p in arms])
    elif shape == "crescent":
        direction = rng.uniform(0, 2 * np.pi)
        offset = np.array([np.cos(direction), np.sin(direction)]) * r * 0.5
        mask = _disk(size, center, r)
        mask &= 1 - _disk(size, center + offset, r * 0.8)
    elif shape == "bar":
        a, b = r, r * rng.uniform(0.15, 0.25)
        free_angle = rng.uniform(0, np.pi)
        _fill_polygons(mask, [_rotate([[-a, -b], [a, -b], [a, b], [-a, b]] + center, free_angle, center)])
    elif shape == "ring":
        mask = _disk(size, center, r) & (1 - _disk(size, center, r * rng.uniform(0.5, 0.65)))
    elif shape == "blob":
        k = np.sort(rng.uniform(0, 2 * np.pi, 7))
        radii = r * rng.uniform(0.4, 1.0, 7)
        _fill_polygons(mask, [np.stack([np.cos(k) * radii, np.sin(k) * radii], 1) + center])
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return mask


def apply_attribute(mask, attribute, strength):
    """
    `mask` (size, size) uint8 in {0, 1} with a fine-grained attribute (see `ShapeVariant`).

    Returns:
        np.ndarray: (size, size) uint8 in {0, 1}, a subset of `mask`.
    """
    size = mask.shape[0]
    if attribute == "holed":
        # The most interior pixel (first in row-major order among ties), and a hole that leaves a
        # rim of at least 30% of the local thickness, so the outline stays the parent's.
        depth = cv2.distanceTransform(np.pad(mask, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
        radius = max(1.0, min(strength * size, 0.7 * float(depth[y, x])))
        return mask & (1 - _disk(size, (x, y), radius))
    if attribute == "stretched":
        if strength < 1:
            raise ValueError(f"a stretched shape needs strength >= 1, got {strength}")
        height = max(1, int(round(size / strength)))
        squashed = cv2.resize(mask, (size, height), interpolation=cv2.INTER_NEAREST)
        out = np.zeros_like(mask)
        top = (size - height) // 2
        out[top : top + height] = squashed
        return out
    raise ValueError(f"unknown shape attribute {attribute!r}")


@functools.lru_cache(maxsize=256)
def _grid(size):
    return np.mgrid[0:size, 0:size].astype(np.float32)


def fill_texture(texture, color, size, rng):
    """
    The (size, size, 3) fill of an object: its colour on the "on" cells of the pattern and a dark
    shade of the same colour on the "off" cells, so texture and hue are both visible.
    """
    color = np.clip(np.asarray(color, np.float32) * rng.uniform(0.85, 1.1) + rng.normal(0, 10, 3), 0, 255)
    if texture == "solid":
        on = np.ones((size, size), bool)
    else:
        yy, xx = _grid(size)
        angle = rng.uniform(0, np.pi)
        u = xx * np.cos(angle) + yy * np.sin(angle)
        if texture == "striped":
            period = max(4.0, size / 5.0)
            on = (np.floor(u / (period / 2)) % 2) == 0
        elif texture == "checkered":
            v = -xx * np.sin(angle) + yy * np.cos(angle)
            cell = max(3.0, size / 6.0)
            on = ((np.floor(u / cell) + np.floor(v / cell)) % 2) == 0
        else:
            raise ValueError(f"unknown texture {texture!r}")
    return np.where(on[..., None], color, color * 0.4).astype(np.uint8)


def draw_background(height, width, rng):
    """A smooth, desaturated colour field with line and outline clutter."""
    gray = rng.uniform(60, 190, (3, 3, 1))
    tint = rng.normal(0, 18, (3, 3, 3))
    coarse = np.clip(gray + tint, 0, 255).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    image = np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))
    for _ in range(rng.integers(4, 11)):
        color = tuple(int(v) for v in np.clip(rng.uniform(40, 220) + rng.normal(0, 12, 3), 0, 255))
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.6:
            cv2.line(image, p1, p2, color, int(rng.integers(1, 3)), cv2.LINE_AA)
        else:
            cv2.rectangle(image, p1, (p1[0] + (p2[0] - p1[0]) // 3, p1[1] + (p2[1] - p1[1]) // 3), color, 1)
    return image


def add_noise(image, rng, amplitude=6):
    # Uniform integer sensor noise: as good as Gaussian here and five times cheaper to draw.
    noise = rng.integers(-amplitude, amplitude + 1, image.shape, dtype=np.int16)
    return np.clip(image + noise, 0, 255).astype(np.uint8)
