"""The mapper builds only the part of the mosaic canvas that the affine warp reads
(`source_region`): the warped image must be exactly the warp of the whole canvas, for the
reference's random draws at 640 and at the demo's 160 px; a region cut too tight must show."""
import numpy as np

from efl.data import yolox_transforms as YT


def _draws(seed, n):
    rng = np.random.RandomState(seed)
    for k in range(n):
        s = (640, 160)[k % 2]
        tiles = [(rng.randint(1, 256, (rng.randint(s // 3, s + 1), rng.randint(s // 3, s + 1), 3)).astype(np.uint8),
                  np.zeros((0, 4)), np.zeros(0, np.int64)) for _ in range(4)]
        center = tuple(rng.randint(s // 2, 2 * s - s // 2, 2))
        matrix = YT.affine_matrix(input_size=(2 * s, 2 * s), output_size=(s, s), angle=rng.uniform(-10, 10),
                                  scale=rng.uniform(0.1, 2.0), shear=tuple(rng.uniform(-2, 2, 2)),
                                  translation=tuple(rng.uniform(0.4, 0.6, 2)))
        yield s, tiles, center, matrix


def _warp_of_region_and_of_canvas(s, tiles, center, matrix, margin):
    region = YT.source_region(matrix, input_size=(2 * s, 2 * s), output_size=(s, s), margin=margin)
    partial = YT.mosaic(tiles, center, s, region=region)[0]
    whole = YT.mosaic(tiles, center, s)[0]
    warp = [YT.warp_affine(c, np.zeros((0, 4)), np.zeros(0), matrix, scale=1.0, output_size=(s, s))[0]
            for c in (partial, whole)]
    return warp, partial, whole, region


def test_warping_the_region_of_the_canvas_gives_exactly_the_warp_of_the_whole_canvas():
    for s, tiles, center, matrix in _draws(0, 40):
        (from_region, from_canvas), partial, whole, (x0, y0, x1, y1) = _warp_of_region_and_of_canvas(
            s, tiles, center, matrix, margin=2)
        np.testing.assert_array_equal(from_region, from_canvas)
        # the region holds the canvas's pixels, the rest stays 0
        np.testing.assert_array_equal(partial[y0:y1, x0:x1], whole[y0:y1, x0:x1])
        outside = partial.copy()
        outside[y0:y1, x0:x1] = 0
        assert not outside.any()


def test_a_region_cut_too_tight_changes_the_warp():
    # 2 px inside the read area: the check above can fail
    differ = [not np.array_equal(*_warp_of_region_and_of_canvas(*draw, margin=-2)[0]) for draw in _draws(1, 10)]
    assert sum(differ) >= 5
