"""Pictures inside pictures, on plain arrays: frames found, printed lines taken out."""

import numpy as np
import pytest

from hdr_jax import frames


def _seven(mask: np.ndarray, top: int, left: int, size: int) -> None:
    """A '7' of `size` pixels: a bar and a slanted stem, 4 pixels thick."""
    mask[top:top + 4, left:left + size] = True
    for t in range(size):
        x = left + size - 4 - t * size // (2 * size)
        mask[top + t, x:x + 4] = True


def test_an_outline_frame_gives_what_it_encloses():
    mask = np.zeros((200, 300), bool)
    mask[40:44, 60:260] = mask[156:160, 60:260] = True   # A printed box ...
    mask[40:160, 60:64] = mask[40:160, 256:260] = True
    _seven(mask, 70, 140, 60)                              # ... with a digit inside.
    frame = frames.find_frame(mask)
    y0, y1, x0, x1 = frame.box
    assert 40 <= y0 <= 48 and 152 <= y1 <= 160 and 60 <= x0 <= 68 and 252 <= x1 <= 260
    assert frame.inside[100 - y0, 150 - x0] and not frame.inside[0, 0]


def test_a_bezels_edge_is_sharp_and_a_flash_photos_dark_corners_are_not():
    """`sharp`: the same outline frame (a box 40-160 x 60-260, what it encloses eroded by 3
    as `find_frame` gives it) on a bezel, dark beyond a step, and on a flash photo's corners,
    darkening smoothly from the middle out."""
    yy, xx = np.mgrid[:200, :320].astype(np.float32)
    inside = np.zeros((120, 200), bool)
    inside[3:-3, 3:-3] = True
    frame = frames.Frame((40, 160, 60, 260), inside)
    bezel = np.ones((200, 320), np.float32)
    bezel[40:160, 60:260] = 0.2
    ramp = np.hypot((yy - 100) / 100, (xx - 160) / 160).astype(np.float32)
    assert frames.sharp(bezel, frame) and not frames.sharp(ramp, frame)


def test_a_filled_frame_with_the_digit_as_holes_gives_its_area():
    mask = np.zeros((300, 300), bool)
    mask[50:250, 40:240] = True       # A plot's dark area ...
    digit = np.zeros_like(mask)
    _seven(digit, 90, 100, 90)
    mask &= ~digit                    # ... and the bright digit in it.
    mask[260:264, 40:240] = True      # Tick labels and a title are not the frame.
    frame = frames.find_frame(mask)
    y0, y1, x0, x1 = frame.box
    assert frame.inside is None
    assert 50 <= y0 <= 72 and 228 <= y1 <= 250 and 40 <= x0 <= 62 and 218 <= x1 <= 240


@pytest.mark.parametrize("shape", ["seven", "zero"])
def test_digits_are_not_frames(shape):
    """(A bold 1 is a filled frame with nothing inside: `preprocess` then reads the whole.)"""
    mask = np.zeros((200, 200), bool)
    if shape == "seven":
        _seven(mask, 20, 40, 150)
    else:                              # A round 0 (a frame only if it filled its box).
        yy, xx = np.mgrid[:200, :200]
        ring = ((yy - 100) / 80) ** 2 + ((xx - 100) / 60) ** 2
        mask[(ring < 1) & (ring > 0.6)] = True
    assert frames.find_frame(mask) is None


def test_ruled_lines_go_and_a_stroke_crossing_them_stays():
    mask = np.zeros((240, 320), bool)
    for y in (60, 120, 180):
        mask[y:y + 2] = True                       # Ruled lines across the sheet.
    mask[40:200, 150:158] = True                   # A 1 written across two of them.
    ink = mask.astype(np.float32)
    out = frames.remove_lines(ink, mask)
    assert out[61, :140].max() == 0 and out[121, 170:].max() == 0
    assert (out[40:200, 150:158] == 1).all()       # The stroke is whole where it crosses.


def test_a_wall_of_bricks_is_a_pattern_not_lines_to_remove():
    mask = np.zeros((240, 320), bool)
    for row, y in enumerate(range(0, 240, 40)):
        mask[y:y + 3] = True                        # Mortar courses ...
        for x in range(20 * (row % 2), 320, 80):
            mask[y:y + 40, x:x + 3] = True          # ... and the joints between bricks.
    with pytest.raises(frames.Pattern):
        frames.remove_lines(mask.astype(np.float32), mask)


def test_a_row_of_cells_loses_its_leaning_walls_and_keeps_the_digit():
    """A photo tilts a form's printed walls: each is a slanted run of a pixel or two, whose
    box is half empty; they go all the same, and the 1 written in a cell stays."""
    mask = np.zeros((200, 400), bool)
    mask[60:62] = mask[140:142] = True                      # The row's top and bottom lines.
    for x in (40, 120, 200, 280, 360):                      # Its walls, leaning 1 in 20.
        for y in range(62, 140):
            mask[y, x + (y - 62) // 20] = True
    mask[75:128, 155:160] = True                            # A 1 in the second cell.
    out = frames.remove_lines(mask.astype(np.float32), mask)
    assert out[62:140, 30:150].max() == 0 and out[62:140, 190:].max() == 0
    assert (out[75:128, 155:160] == 1).all()


def _row_of_cells(mask: np.ndarray) -> None:
    """A form's row of five cells, 2-pixel lines, from column 40 to 360, rows 60 to 140."""
    mask[60:62, 40:362] = mask[138:140, 40:362] = True
    for x in range(40, 361, 80):
        mask[60:140, x:x + 2] = True


def test_a_row_of_cells_is_no_frame():
    """Its lines enclose many holes, as a plot's filled area does, but fill little of their
    box: no frame to read inside (its walls would be read as 1s)."""
    mask = np.zeros((200, 400), bool)
    _row_of_cells(mask)
    _seven(mask, 75, 130, 50)
    assert frames.find_frame(mask) is None


def test_a_row_of_cells_with_a_digit_loses_its_lines_and_walls():
    """`remove_outline`: a row of cells is one printed box with walls from side to side in
    it; all of them go, the 7 in the second cell stays."""
    cells = np.zeros((200, 400), bool)
    _row_of_cells(cells)
    _seven(cells, 75, 130, 50)
    out = frames.remove_outline(cells.astype(np.float32), _pieces(cells))
    assert out[55:145, 35:125].max() == 0 and out[55:145, 190:].max() == 0
    assert out[75:125, 130:180].max() == 1


def _pieces(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.label(mask, structure=np.ones((3, 3)))[0]


@pytest.mark.parametrize("touching", [False, True])
def test_a_printed_box_around_the_digit_goes_and_the_digit_stays(touching):
    """A box printed in light grey is no frame to `find_frame` (paper to its split) but is
    among the strokes; its four sides go, a digit inside (touching it or not) stays."""
    mask = np.zeros((200, 300), bool)
    mask[40:42, 60:260] = mask[158:160, 60:260] = True     # The box, 2 pixels thick ...
    mask[40:160, 60:62] = mask[40:160, 258:260] = True
    _seven(mask, 70 - 28 * touching, 130, 60)             # ... and a 7 in it.
    digit = np.zeros_like(mask)
    _seven(digit, 70 - 28 * touching, 130, 60)
    out = frames.remove_outline(mask.astype(np.float32), _pieces(mask))
    assert out[:, :64].max() == 0 and out[:, 256:].max() == 0 and out[157:].max() == 0
    kept = (out > 0) & digit
    assert kept.sum() >= digit[43:].sum()                  # Only the box's rows may go.


@pytest.mark.parametrize("shape", ["zero", "square zero", "bold one"])
def test_a_zero_or_a_bold_one_alone_is_no_printed_box(shape):
    mask = np.zeros((200, 200), bool)
    if shape == "bold one":                                # Straight sides, filled.
        mask[20:180, 90:110] = True
    elif shape == "zero":
        yy, xx = np.mgrid[:200, :200]
        ring = ((yy - 100) / 80) ** 2 + ((xx - 100) / 60) ** 2
        mask[(ring < 1) & (ring > 0.6)] = True
    else:                                                  # Straight sides, nothing inside.
        mask[20:180, 40:160] = True
        mask[32:168, 52:148] = False
    ink = mask.astype(np.float32)
    assert frames.remove_outline(ink, _pieces(mask)) is ink


def test_no_lines_returns_the_same_array():
    mask = np.zeros((100, 100), bool)
    _seven(mask, 10, 20, 60)
    ink = mask.astype(np.float32)
    assert frames.remove_lines(ink, mask) is ink


def test_colour_contrast_makes_a_coloured_digit_light_on_dark():
    rgb = np.zeros((60, 60, 3), np.uint8)
    rgb[:] = (68, 1, 84)                            # viridis at 0 ...
    rgb[20:40, 28:32] = (253, 231, 37)              # ... and at 1.
    grey = frames.colour_contrast(rgb)
    assert grey.dtype == np.float32 and grey[0, 0] == 0 and grey[30, 30] == pytest.approx(1)


def test_a_shadow_across_the_sheet_is_no_frame_though_it_fills_its_box():
    mask = np.zeros((200, 300), bool)
    mask[:, 180:] = True                             # The shadowed third of the sheet ...
    rng = np.random.default_rng(0)
    mask[rng.integers(0, 200, 40), rng.integers(180, 300, 40)] = False  # ... with grain,
    _seven(mask, 60, 40, 80)                         # and writing outside it.
    assert frames.find_frame(mask) is None


def _ring(shape: tuple[int, int], y: float, x: float, radius: float, half_width: float,
          patchy: bool = True) -> np.ndarray:
    """A stamp's ring: pixels within `half_width` of a circle, every fifth arc of 4 degrees
    left bare (stamp ink is patchy)."""
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]]
    ring = np.abs(np.hypot(gy - y, gx - x) - radius) <= half_width
    if patchy:
        ring &= (np.floor(np.degrees(np.arctan2(gy - y, gx - x)) / 4) % 5) != 0
    return ring


@pytest.mark.parametrize("y, x", [(100, 150), (170, 260)])  # Whole, and cut by two sides.
def test_a_stamps_ring_is_found_across_the_writing_whole_or_cut_by_the_picture(y, x):
    mask = _ring((200, 300), y, x, 70, 4)
    for left in (60, 130, 200):
        _seven(mask, 70, left, 60)
    ring = frames.find_ring(mask)
    assert ring is not None
    assert abs(ring.y - y) < 2 and abs(ring.x - x) < 2 and abs(ring.radius - 70) < 2
    assert 3 <= ring.half_width <= 8


def test_a_stamps_second_ring_is_found_inside_or_outside_the_first():
    mask = _ring((260, 300), 130, 150, 100, 4) | _ring((260, 300), 130, 150, 75, 3)
    outer = frames.find_ring(mask)
    assert abs(outer.radius - 100) < 2
    inner = frames.second_ring(mask & (outer.distance(mask.shape) > outer.half_width), outer)
    assert inner is not None and abs(inner.radius - 75) < 2
    inner = frames.Ring(130, 150, 75, 4)
    outer = frames.second_ring(mask & (inner.distance(mask.shape) > inner.half_width), inner)
    assert outer is not None and abs(outer.radius - 100) < 2


def test_a_row_of_sevens_has_no_ring():
    """Circles through three of its pixels graze the line: strokes and paper in turn, never a
    ring's solid band."""
    mask = np.zeros((120, 400), bool)
    for left in range(20, 360, 50):
        _seven(mask, 30, left, 40)
    assert frames.find_ring(mask) is None
