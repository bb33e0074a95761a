import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from bench.uploads import png_bytes
from hdr_jax import preprocess


def _png(array: np.ndarray, mode: str = "L") -> bytes:
    return png_bytes(array, mode)


def _stroke_digit(h=200, w=300, dark_on_light=True) -> np.ndarray:
    """A big '1'-like bar plus a foot, somewhere off-centre."""
    img = np.zeros((h, w), np.uint8)
    img[40:160, 200:215] = 255
    img[150:160, 185:230] = 255
    return 255 - img if dark_on_light else img


def test_mnist_format_passes_through_unchanged(real_mnist):
    for image in real_mnist.test.images:
        grey = preprocess.decode(_png(image))
        out = preprocess.preprocess_digit(grey).image
        np.testing.assert_array_equal(out, image.astype(np.float32) / 255.0)


def test_output_is_mnist_format_fit_20_and_centred_by_mass():
    for dark in (True, False):
        digit = preprocess.preprocess_digit(preprocess.decode(_png(_stroke_digit(
            dark_on_light=dark)))).image
        assert digit.shape == (28, 28) and digit.dtype == np.float32
        ys, xs = np.nonzero(digit > 0.05)
        assert max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) in (20, 21)
        cy, cx = ndimage.center_of_mass(digit)
        assert abs(cy - 13.5) <= 1.0 and abs(cx - 13.5) <= 1.0
        assert digit.max() == pytest.approx(1.0, abs=0.05) and digit[0, 0] == 0


def test_a_digit_pressed_unevenly_reaches_full_ink_on_its_faint_side_too():
    """A bar whose ink fades from 1.0 to 0.6 across it (the pen pressed harder on one side):
    in MNIST format both of its ends are at full ink, as MNIST's strokes are."""
    ink = np.zeros((100, 100), np.float32)
    ink[10:90, 20:80] = np.linspace(1.0, 0.6, 60, dtype=np.float32)
    digit = preprocess.to_mnist(ink)
    cols = np.nonzero(digit.max(0) > 0)[0]
    assert digit[10:18, cols[1]].min() == 1.0 and digit[10:18, cols[-2]].min() == 1.0


def test_dark_and_light_polarity_give_the_same_digit():
    a = preprocess.preprocess_digit(preprocess.decode(_png(_stroke_digit(dark_on_light=True))))
    b = preprocess.preprocess_digit(preprocess.decode(_png(_stroke_digit(dark_on_light=False))))
    np.testing.assert_allclose(a.image, b.image, atol=0.02)
    assert a.box == b.box == (185, 40, 230, 160)


def test_transparent_canvas_counts_as_background_for_dark_and_light_strokes():
    ink = _stroke_digit(dark_on_light=False)
    reference = preprocess.preprocess_digit(preprocess.decode(_png(ink))).image
    for colour in (0, 255):
        rgba = np.zeros((*ink.shape, 4), np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = ink
        digit = preprocess.preprocess_digit(preprocess.decode(_png(rgba, "RGBA"))).image
        np.testing.assert_allclose(digit, reference, atol=0.02)


def test_uneven_lighting_and_paper_tint_are_removed():
    ink = _stroke_digit(dark_on_light=False).astype(np.float32) / 255
    gy, gx = np.mgrid[0:200, 0:300].astype(np.float32)
    paper = 0.55 + 0.4 * gx / 300 + 0.05 * gy / 200  # Strong left-to-right gradient.
    photo = paper * (1 - 0.8 * ink)
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 0.02, photo.shape), 0, 1)
    buf = io.BytesIO()
    Image.fromarray((noisy * 255).astype(np.uint8)).convert("RGB").save(buf, "JPEG", quality=70)
    digit = preprocess.preprocess_digit(preprocess.decode(buf.getvalue()))
    clean = preprocess.preprocess_digit(preprocess.decode(_png(_stroke_digit(dark_on_light=False))))
    assert np.abs(digit.image - clean.image).mean() < 0.03
    assert abs(digit.box[0] - 185) <= 3 and abs(digit.box[2] - 230) <= 3


@pytest.mark.parametrize("kind", ["palette", "16bit", "cmyk", "la", "bmp", "webp", "gif"])
def test_many_pixel_formats_decode(kind):
    ink = _stroke_digit(dark_on_light=True)
    image = Image.fromarray(ink, "L")
    buf = io.BytesIO()
    if kind == "palette":
        image.convert("P").save(buf, "PNG")
    elif kind == "16bit":
        Image.fromarray(ink.astype(np.uint16) * 257).save(buf, "PNG")
    elif kind == "cmyk":
        image.convert("CMYK").save(buf, "JPEG", quality=95)
    elif kind == "la":
        image.convert("LA").save(buf, "PNG")
    elif kind == "bmp":
        image.save(buf, "BMP")
    elif kind == "webp":
        image.save(buf, "WEBP", lossless=True)
    else:
        image.convert("P").save(buf, "GIF")
    decoded = preprocess.decode(buf.getvalue())
    assert decoded.grey.shape == (200, 300) and decoded.scale == 1.0
    assert abs(float(decoded.grey.mean()) - float(ink.mean()) / 255) < 0.02
    assert preprocess.preprocess_digit(decoded).box[0] in range(182, 189)


def test_exif_orientation_is_applied():
    ink = _stroke_digit(dark_on_light=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # Rotate 90 degrees clockwise to display.
    buf = io.BytesIO()
    Image.fromarray(ink).save(buf, "JPEG", exif=exif, quality=95)
    assert preprocess.decode(buf.getvalue()).grey.shape == (300, 200)


@pytest.mark.parametrize("raw", [
    b"", b"hello world", b"%PDF-1.4\n1 0 obj",
    b'<svg xmlns="http://www.w3.org/2000/svg"><text>7</text></svg>',
])
def test_non_images_are_unreadable(raw):
    with pytest.raises(preprocess.PreprocessError) as err:
        preprocess.decode(raw)
    assert type(err.value) is preprocess.PreprocessError


def test_truncated_image_is_unreadable():
    raw = _png(_stroke_digit())
    with pytest.raises(preprocess.PreprocessError, match="damaged or truncated") as err:
        preprocess.decode(raw[: len(raw) // 2])
    assert type(err.value) is preprocess.PreprocessError


def test_decompression_bomb_is_refused_from_the_header():
    # A valid PNG header claiming 30000 x 30000 pixels, followed by nothing.
    import zlib

    png = bytearray(_png(np.zeros((1, 1), np.uint8)))
    png[16:24] = (30000).to_bytes(4, "big") * 2  # IHDR width and height...
    png[29:33] = zlib.crc32(bytes(png[12:29])).to_bytes(4, "big")  # ... with a valid CRC.
    with pytest.raises(preprocess.ImageTooLarge, match="more than"):
        preprocess.decode(bytes(png))


@pytest.mark.parametrize("value", [0, 128, 255])
def test_blank_images_find_no_digit(value):
    with pytest.raises(preprocess.NoDigitFound):
        preprocess.preprocess_digit(preprocess.decode(_png(np.full((100, 100), value,
                                                                   np.uint8))))


def test_number_segmentation_left_to_right_with_broken_and_touching_digits():
    img = np.zeros((120, 600), np.uint8)
    img[20:100, 40:52] = 255                      # 1
    img[20:30, 150:200] = 255                     # broken "7": bar ...
    img[34:100, 188:200] = 255                    # ... and stem, not touching
    img[20:100, 280:340] = 255                    # two "0"s ...
    img[32:88, 292:328] = 0
    img[20:100, 341:401] = 255                    # ... touching each other
    img[32:88, 353:389] = 0
    img[20:100, 480:492] = 255
    digits = preprocess.preprocess_number(preprocess.decode(_png(255 - img)))
    boxes = [d.box for d in digits]
    assert len(digits) == 5, boxes
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)
    # The 7's pieces were merged (boxes are exact to the working resolution's pixel).
    assert abs(boxes[1][0] - 150) <= 2 and abs(boxes[1][2] - 200) <= 2


def digits_of_uneven_height() -> np.ndarray:
    """Ink of four pieces 40, 42, 38 and 64 pixels tall (digits of uneven size, and a touching
    pair off the baseline)."""
    ink = np.zeros((100, 300), np.float32)
    for x, top, height in ((20, 30, 40), (70, 28, 42), (120, 32, 38), (170, 10, 64)):
        ink[top:top + height, x:x + 30] = 1.0
    return ink


def test_line_height_is_the_typical_digit_not_the_tallest_piece():
    """The line's height is the pieces' median, 41, not the tallest piece's 64."""
    assert preprocess.segment_number(digits_of_uneven_height())[3] == 41.0


def one_touching_a_zero() -> np.ndarray:
    """Ink of a 1 (a bar 10 wide) touching a 0 (a ring 42 wide) on its right: one piece 52
    pixels wide and 60 tall, its joint at column 50."""
    ink = np.zeros((100, 140), np.float32)
    ink[20:80, 40:50] = 1.0
    ink[20:80, 50:92] = 1.0
    ink[30:70, 60:82] = 0.0
    return ink


def test_a_one_touching_a_zero_is_offered_a_cut_where_the_one_ends(monkeypatch):
    """No valley parts them (the 1's bar and the 0's side both fill their columns) and the
    piece is too narrow for an even spacing: only the cut `NARROW` line heights in from the
    piece's left end (53) comes within 3 pixels of the joint."""
    cuts, between, _, height = preprocess.segment_number(one_touching_a_zero())
    assert height == 60.0 and between == [0, len(cuts) - 1]
    assert min(abs(c - 50) for c in cuts) <= 3, cuts
    monkeypatch.setattr(preprocess, "NARROW_FROM", np.inf)
    cuts = preprocess.segment_number(one_touching_a_zero())[0]
    assert min(abs(c - 50) for c in cuts) > 3, cuts


def test_a_run_of_five_touching_zeros_is_offered_a_cut_at_each_joint():
    """Five rings 0.6 line heights wide, each overlapping the next by 4 pixels, are one piece
    2.7 line heights wide, inked most where they join: the piece is cut evenly into five
    (`SPACED_UP_TO`), and each joint has a cut within 3 pixels. Cut into at most four (before
    session 19), every joint's nearest cut was 7-12 pixels off."""
    ink = np.zeros((100, 260), np.float32)
    for k in range(5):
        x = 40 + 32 * k
        ink[20:80, x:x + 36] = 1.0
        ink[28:72, x + 8:x + 28] = 0.0
    cuts, between, _, height = preprocess.segment_number(ink)
    assert height == 60.0 and len(between) == 2  # One piece, cut at its two ends...
    for joint in (74, 106, 138, 170):  # ... and inside, at each joint.
        assert min(abs(c - joint) for c in cuts) <= 3, (joint, cuts)


def test_number_fragments_join_their_digit_and_far_specks_are_dropped():
    img = np.zeros((120, 600), np.uint8)
    img[20:100, 40:52] = 255                      # 1
    img[40:100, 150:190] = 255                    # body of a "5" ...
    img[52:88, 150:178] = 0
    img[20:30, 176:226] = 255                     # ... its top bar, detached, mostly to the right
    img[20:60, 320:328] = 255                     # a "1" broken and slanted: upper half ...
    img[62:100, 312:320] = 255                    # ... lower half, shifted left
    img[58:64, 440:446] = 255                     # a speck far from every digit
    img[20:100, 520:532] = 255                    # 1
    digits = preprocess.preprocess_number(preprocess.decode(_png(255 - img)))
    boxes = [d.box for d in digits]
    assert len(digits) == 4, boxes
    assert abs(boxes[1][0] - 150) <= 2 and abs(boxes[1][2] - 226) <= 2  # Bar joined to the 5.
    assert abs(boxes[2][0] - 312) <= 2 and abs(boxes[2][2] - 328) <= 2  # Halves joined.


def smudge_above_a_number() -> np.ndarray:
    """Two bars 80 pixels tall, and a smudge (a shadow's corner) far above the first."""
    img = np.zeros((240, 400), np.uint8)
    img[130:210, 100:112] = 255
    img[130:210, 250:262] = 255
    img[5:25, 95:125] = 255
    return 255 - img


def number_in_a_shadow(digits: list[np.ndarray]) -> np.ndarray:
    """MNIST digits written on a lit sheet 3x their size, the right 40% of the sheet in a
    shadow with a straight edge (the shadowed area fills its box, as a plot's area does)."""
    sheet = np.full((200, 100 + 90 * len(digits)), 235.0)
    for k, d in enumerate(digits):
        ink = np.kron(d, np.ones((3, 3))) / 255.0
        area = sheet[58:142, 60 + 90 * k:144 + 90 * k]
        area[:] = area * (1 - ink) + 40 * ink
    sheet[:, int(0.6 * sheet.shape[1]):] *= 0.6
    return sheet.astype(np.uint8)


def test_a_shadow_across_a_number_is_no_frame_to_read_inside(real_mnist):
    """Every digit is read, not only those in the shadow (as if it were a plot's area)."""
    digits = [real_mnist.test.images[i] for i in range(5)]
    line = preprocess.number_line(preprocess.decode(_png(number_in_a_shadow(digits))))
    assert len(line.pieces) == 6  # Five digits: six cuts between pieces.


def test_a_smudge_far_above_the_line_is_no_part_of_it():
    line = preprocess.number_line(preprocess.decode(_png(smudge_above_a_number())))
    assert len(line.pieces) == 3  # Two digits: three cuts between pieces.
    assert abs(line.height - 80) <= 2  # Not stretched up to the smudge.
    digits = preprocess.preprocess_number(preprocess.decode(_png(smudge_above_a_number())))
    assert [d.box[1] for d in digits] == [130, 130]


def test_the_writing_is_told_by_its_largest_piece_clear_of_the_sides():
    """`_near_the_writing`: a shadow's grainy edge cut off by the left side, larger than any
    digit, lies far below a small number; the number's rows are kept and the edge is not
    (the largest piece of all, as before, kept the edge and dropped the number). Where
    nothing clear of the sides is a quarter the largest's size, the largest still decides."""
    labels = np.zeros((200, 300), np.int32)
    labels[20:36, 100:108] = 1             # a digit, 128 pixels
    labels[22:36, 120:128] = 2             # another, 112
    labels[120:160, 0:12] = 3              # the shadow's edge, 480, touching the left side
    sizes = np.bincount(labels.ravel())[1:]
    assert preprocess._near_the_writing(labels, sizes).tolist() == [False, True, True, False]
    sizes = np.array([128, 112, 4000])     # (were the edge's piece far larger)
    assert preprocess._near_the_writing(labels, sizes).tolist() == [False, False, False, True]


def test_along_a_tilted_line_the_writing_is_followed_from_piece_to_piece():
    """`_near_the_writing(along_a_line=True)`: digits on a line rising to the left, each level
    with its neighbour, are all kept, though the first two lie further than half a digit above
    the largest (which alone would drop them); a smudge far above the line is still dropped."""
    labels = np.zeros((200, 300), np.int32)
    for k, (y, x) in enumerate([(100, 200), (92, 180), (84, 160), (76, 140), (68, 120),
                                (60, 100)], start=1):
        labels[y:y + 20, x:x + 15 + (k == 1)] = k  # (The first, the largest, a column wider.)
    labels[10:25, 150:170] = 7                     # a smudge
    sizes = np.bincount(labels.ravel())[1:]
    on_its_own = preprocess._near_the_writing(labels, sizes).tolist()
    assert on_its_own == [False, True, True, True, True, False, False, False]
    assert preprocess._near_the_writing(labels, sizes, along_a_line=True).tolist() == [
        False, True, True, True, True, True, True, False]


def test_a_strip_along_the_picture_edge_is_no_writing_but_a_digit_touching_it_is():
    """`_along_the_edges` on labelled pieces of a 200x300 picture: the table's edge past a sheet
    (thin, touching a side, running along it) goes; a 7 cropped tightly (its bar along the
    top edge, its stem far below), a speck in a corner and a long stroke off the edge stay."""
    labels = np.zeros((200, 300), np.int32)
    labels[:150, :6] = 1                   # a thin strip down most of the left side
    labels[:5, 40:300] = 2                 # a 7: its bar along the top edge...
    labels[5:120, 150:160] = 2             # ...and its stem
    labels[195:200, 0:5] = 3               # a speck in a corner
    labels[100:104, 40:260] = 4            # a long stroke, off the edges
    labels[60:200, 265:300] = 5            # a strip along the right side, but thick
    sizes = np.bincount(labels.ravel())[1:]
    assert preprocess._along_the_edges(labels, sizes).tolist() == [
        True, False, False, False, False]


def _drawn(strokes: list[tuple[str, tuple]], size=(300, 120), width=5) -> np.ndarray:
    """Ink (float, 1 on the strokes) drawn with Pillow: ("line", points) or ("arc", box,
    start, end) strokes `width` pixels wide."""
    from PIL import ImageDraw

    canvas = Image.new("L", size)
    draw = ImageDraw.Draw(canvas)
    for kind, *args in strokes:
        if kind == "line":
            draw.line(args[0], fill=255, width=width)
        else:
            draw.arc(args[0], args[1], args[2], fill=255, width=width)
    return np.asarray(canvas, np.float32) / 255


def _two(x: int, bar_to: int) -> list[tuple[str, tuple]]:
    """A 2 written 60 pixels tall from column `x`: an arc, a diagonal, a flat foot."""
    return [("arc", (x, 20, x + 36, 50), 180, 40), ("line", [(x + 33, 42), (x, 80)]),
            ("line", [(x, 80), (bar_to, 80)])]


def test_an_underline_is_taken_out_alone_or_touching_a_digit_and_the_digits_kept():
    """`_without_underline`: a gently bowed line under three digits goes, whether it lies apart
    from them or one digit's foot touches it (then only the line's thickness of that foot
    goes); the digits' other pixels stay."""
    digits = [("line", [(60, 20), (60, 80)]), ("arc", (100, 20, 140, 80), 0, 360),
              ("line", [(180, 20), (180, 80)])]
    for touching in (False, True):
        y = 86 if touching else 92
        line = _drawn([("line", [(40, y), (120, y + 2), (200, y)])], width=3)
        ink = np.maximum(_drawn(digits), line)
        if touching:
            ink = np.maximum(ink, _drawn([("line", [(180, 80), (180, 86)])]))
        out = preprocess._without_underline(ink, *preprocess.stroke_pieces(ink))
        assert out is not ink
        assert not (out[line > 0.5] > 0.5).any()  # The line is gone...
        kept = _drawn(digits) > 0.5
        kept[76:] = False  # (...and, touching, a line's thickness of the 1's foot with it.)
        assert (out[kept] == ink[kept]).all()  # ...the digits are not.


def test_feet_and_dashes_are_no_underline():
    """As smooth as an underline, but under one digit or none, so they stay whole
    (`_without_underline` returns the ink itself): a 2's flat foot running into the next 2's,
    a long foot broken off a 1 beside other digits, a long stroke with nothing above it."""
    twos = _drawn(_two(40, 90) + _two(88, 130) + [("line", [(170, 20), (170, 80)])])
    foot = _drawn([("line", [(60, 20), (60, 80)]), ("arc", (90, 20, 130, 80), 0, 360),
                   ("line", [(180, 20), (180, 80)]), ("line", [(140, 88), (220, 88)])])
    dash = _drawn([("line", [(40, 60), (200, 62)])], width=4)
    for ink in (twos, foot, dash):
        assert preprocess._without_underline(ink, *preprocess.stroke_pieces(ink)) is ink


def test_stroke_width_is_the_width_strokes_are_drawn_to_a_pixel():
    digits = [("line", [(60, 20), (60, 80)]), ("arc", (100, 20, 140, 80), 0, 360),
              ("line", [(180, 20), (180, 80)])]
    for width in (3, 5, 11):
        assert preprocess.stroke_width(_drawn(digits, width=width)) == pytest.approx(width, abs=1)


def test_bold_strokes_are_thinned_fine_ones_thickened_and_a_pens_left_alone():
    """Three 0s 60 pixels tall: drawn with a pen (5 pixels wide) they are left alone; drawn
    with a marker (the pen's strokes grown by a disk, 5 pixels each side) they are thinned to
    `THIN_TO` of the line's height, and drawn with a fine-liner (1 pixel) thickened to
    `THICK_TO` (to a pixel)."""
    from scipy import ndimage

    zeros = [("arc", (40 + 46 * k, 20, 80 + 46 * k, 80), 0, 360) for k in range(3)]
    pen, fine = _drawn(zeros), _drawn(zeros, width=1)
    y, x = np.mgrid[-5:6, -5:6]
    marker = ndimage.grey_dilation(pen, footprint=x**2 + y**2 <= 25)
    assert preprocess._restroked(pen, preprocess.segment_number(pen)[3]) is None
    for ink, wanted in ((marker, preprocess.THIN_TO), (fine, preprocess.THICK_TO)):
        height = preprocess.segment_number(ink)[3]
        assert not (preprocess.FINE * height <= preprocess.stroke_width(ink)
                    <= preprocess.BOLD * height)
        restroked = preprocess._restroked(ink, height)
        assert preprocess.stroke_width(restroked) == pytest.approx(wanted * height, abs=1)


def _word(x0: int, bottoms: list[int], heights: list[int], gap: int = 3
          ) -> list[list[float]]:
    """Pieces [x0, x1, y0, y1, area] 12 pixels wide, `gap` apart, standing on `bottoms`."""
    return [[x0 + (12 + gap) * k, x0 + (12 + gap) * k + 12, b - h, b, 10.0 * h]
            for k, (b, h) in enumerate(zip(bottoms, heights, strict=True))]


def test_a_printed_word_at_either_end_of_a_line_is_dropped_and_handwriting_stays():
    """`_without_printed_words` on [x0, x1, y0, y1, area] pieces: four letters (26 and 20
    high) on one baseline, 40 pixels from three digits 50 high, go before or after them,
    also on a tilted baseline or with a descender; the same pieces with their bottoms
    scattered by 3-6 pixels or 9 pixels apart (small handwritten digits), two letters alone, a
    word as tall as the digits, and a word between two numbers stay."""
    digits = _word(100, [60, 60, 60], [50, 50, 50])
    letters = [26, 20, 20, 26]
    printed = {"level": _word(0, [60, 60, 60, 60], letters),
               "tilted": _word(0, [54, 56, 57, 59], letters),
               "descender": _word(0, [60, 60, 67, 60], letters)}
    for name, word in printed.items():
        assert preprocess._without_printed_words(word + digits) == digits, name
        after = [[g[0] + 200, g[1] + 200, *g[2:]] for g in word]
        assert preprocess._without_printed_words(digits + after) == digits, name
    kept = {"scattered": _word(0, [60, 54, 57, 63], letters),
            "spaced": _word(0, [60, 60, 60, 60], letters, gap=9),
            "two letters": _word(30, [60, 60], [26, 20]),
            "as tall": _word(0, [60, 60, 60, 60], [45, 42, 42, 45]),
            "between": _word(0, [60, 60, 60, 60], letters)}
    for name, word in kept.items():
        pieces = word + digits
        if name == "between":
            pieces = _word(-140, [60, 60], [50, 50]) + word + digits
        assert preprocess._without_printed_words(pieces) == pieces, name


def test_a_hard_shadows_edge_leaves_at_most_a_faint_line_and_the_writing_in_it_stays():
    """A sheet (0.85, grain 0.01) half in a hard-edged shadow (0.45; the edge a slanting line,
    blurred by a pixel) with a bar written across the edge: along a line, the bar is ink on
    both sides, and the edge, away from the bar and the picture's sides, leaves under half
    the bar's strength in the shadow (0.20 against 0.48; with the paper's brightness taken on
    4x4 block minima, 0.74: a line of ink as strong as the writing)."""
    from scipy import ndimage

    yy, xx = np.mgrid[0:300, 0:500]
    edge = yy - 0.3 * xx - 60.0  # The shadow lies below the line.
    grey = ndimage.gaussian_filter(np.where(edge > 0, 0.45, 0.85).astype(np.float32), 1.0)
    grey += np.random.default_rng(0).normal(0, 0.01, grey.shape).astype(np.float32)
    bar = (np.abs(xx - 250) <= 3) & (yy >= 60) & (yy < 240)
    grey[bar] *= 0.3
    ink = preprocess.ink_map(grey, along_a_line=True)
    near_edge = (np.abs(edge) < 6) & (np.abs(xx - 250) > 30) & (xx > 80) & (xx < 420)
    in_shadow = ink[bar & (edge > 10)].min()
    assert ink[bar & (edge < -10)].min() > 0.9 and in_shadow > 0.4
    assert ink[near_edge].max() < 0.5 * in_shadow


def test_the_noise_floor_clears_the_paper_texture_when_ink_is_scarce_or_plentiful():
    """Top-hat values of textured paper (0.05 +- 0.02) with faint ink (0.3) on 0.1% of the
    pixels (a number photographed from afar): the floor leaves under 0.5% of the texture
    above it (Otsu's darker class alone, the texture's lower half here, left 4%). With ink on
    a third of them (a digit filling a plot), the floor still lies well below the ink."""
    rng = np.random.default_rng(0)
    paper = rng.normal(0.05, 0.02, 40_000).astype(np.float32)
    for share in (0.001, 0.33):
        sample = paper.copy()
        sample[: int(share * sample.size)] = 0.3
        floor = preprocess._noise_floor(sample)
        assert np.mean(paper > floor) < 0.005 and floor < 0.2, (share, floor)


def test_above_the_floor_keeps_faint_ink_only_where_it_joins_ink_above_the_floor():
    """Hysteresis across the noise floor: a faint run joined to a stroke is kept (less the
    faint floor), the same run alone is not, and nothing under the faint floor is."""
    top_hat = np.zeros((5, 12), np.float32)
    top_hat[2, 0:3] = 0.5  # A stroke, over the floor (0.4).
    top_hat[2, 3:6] = 0.35  # Faint, joined to it.
    top_hat[2, 8:11] = 0.35  # Faint, alone.
    top_hat[0, 0:3] = 0.25  # Under the faint floor (0.3), though it touches nothing anyway.
    out = preprocess._above_the_floor(top_hat, 0.4, 0.3)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[2, 0:6], [0.2] * 3 + [0.05] * 3, atol=1e-6)
    assert not out[2, 6:].any() and not out[0].any()


def test_a_faint_thin_loop_beside_a_bold_stroke_stays_whole_along_a_line(monkeypatch):
    """A bold 1 and a faint, thin 0 on grainy paper (the 0 at 0.064 below the paper: between
    a faint floor of 3 MADs and the floor, grain taking it above and below): along a line the
    0 is one closed piece with that faint floor (`bench/hard_numbers.py --faint-mads 3`, not
    shipped); without one (`FAINT_MADS` = `NOISE_MADS`, as shipped) it breaks into many, as
    faint digits beside bold ones do in the tuning generator (session 20). Away from the
    writing no grain reaches a stroke's level either way."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:160, 0:260]
    paper = 0.8 + ndimage.gaussian_filter(rng.normal(0, 0.03, yy.shape), 1.0)
    bar = (np.abs(xx - 80) <= 4) & (yy >= 40) & (yy <= 120)
    ring = np.clip(1 - np.abs(np.hypot((yy - 80) / 40, (xx - 170) / 28) - 1) * 28 / 2.5, 0, 1)
    grey = (paper - 0.6 * bar - 0.064 * ring).astype(np.float32)

    def pieces_and_loops(mads):
        monkeypatch.setattr(preprocess, "FAINT_MADS", mads)
        ink = preprocess.ink_map(grey, along_a_line=True)
        away = np.ones(ink.shape, bool)
        away[30:131, 65:96] = away[30:131, 130:210] = False
        assert not (ink[away] > preprocess.FAINT_STROKE).any()
        loop = ink[:, 120:] > preprocess.FAINT_STROKE
        return ndimage.label(loop, np.ones((3, 3)))[1], int(np.sum(preprocess._gaps(loop) > 20))

    assert pieces_and_loops(3.0) == (1, 1)  # One piece around one hole.
    pieces, closed = pieces_and_loops(preprocess.NOISE_MADS)
    assert pieces >= 5 and closed == 0


def _pitted_ring() -> tuple[np.ndarray, np.ndarray]:
    """A ring (a 0), and the same with its stroke pitted by one-pixel gaps (pencil grain)."""
    yy, xx = np.mgrid[0:60, 0:50]
    r = np.hypot(yy - 30, xx - 25)
    ring = (r >= 15) & (r <= 22)
    rng = np.random.default_rng(1)
    pits = ring & (rng.random(ring.shape) < 0.15) & (r > 16) & (r < 21)
    return ring, ring & ~pits


def test_along_a_line_a_faint_digit_is_brought_up_where_it_is_at_most_twofold():
    """`ink_map(along_a_line=True)`: a bar written faintly (a sixth of a bold bar's contrast)
    far from the bold one is brought up to `1 / LOCAL_INK` times its strength in a single
    digit's ink map, the bold one to full strength; where there is no ink, nothing is."""
    grey = np.full((120, 600), 0.9, np.float32)
    grey[30:90, 50:60] = 0.1
    grey[30:90, 500:510] = 0.75
    digit, line = (preprocess.ink_map(grey, along_a_line=a) for a in (False, True))
    assert 0.1 < digit[30:90, 500:510].max() < 0.3
    ratio = line[30:90, 500:510].max() / digit[30:90, 500:510].max()
    assert abs(ratio - 1 / preprocess.LOCAL_INK) < 0.01, ratio
    assert line[30:90, 50:60].max() == 1.0 and not line[:, 200:400].any()


def test_pits_tell_grainy_strokes_from_clean_ones():
    """`_pits`: a clean ring encloses one gap (its hole, far larger than 4 pixels): no pits; the
    pitted ring has many, well over `GRAINY` per 100 stroke pixels."""
    ring, grainy = _pitted_ring()
    assert preprocess._pits(ring) == 0
    assert preprocess._pits(grainy) > 10 * preprocess.GRAINY


def test_grain_inside_strokes_is_no_hole_but_a_mesh_of_cells_is():
    """A ring (a 0) whose stroke is pitted with one-pixel gaps (pencil grain) passes the hole
    count; a mesh of 3x3-pixel cells, as wide as many digits, is refused as a pattern."""
    _, grainy = _pitted_ring()
    assert ndimage.label(~grainy)[1] > 20  # Many enclosed gaps before the closing.
    preprocess._check_holes(grainy)
    mesh = np.ones((40, 160), bool)
    for y in range(2, 38, 5):
        for x in range(2, 158, 5):
            mesh[y:y + 3, x:x + 3] = False
    with pytest.raises(preprocess.NotHandwriting):
        preprocess._check_holes(mesh)


def test_a_printed_word_beside_a_fine_pens_number_stays_out_of_it():
    """Three 0s drawn with a fine pen (1 pixel, 60 tall) after a printed "Total": the 0s are
    thickened, the word is not (thickened, its letters would join and pass for writing), so
    the line is three digits (four cuts between pieces)."""
    from PIL import ImageDraw, ImageFont

    canvas = Image.new("L", (420, 120))
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 58), "Total", fill=255, font=ImageFont.load_default(size=26))
    for k in range(3):
        draw.arc((150 + 50 * k, 25, 190 + 50 * k, 85), 0, 360, fill=255, width=1)
    grey = 235 - 200 * np.asarray(canvas, np.float32) / 255
    assert len(preprocess.number_line(grey).pieces) == 4


def test_a_number_in_a_row_of_printed_cells_is_its_digits_alone():
    """A postcode's row of four grey cells, one 0 in each of three: the row's bottom line is
    no underline, and its walls go with its lines (else each wall is one more digit): three
    digits, four cuts between pieces."""
    ink = _drawn([("arc", (60 + 80 * k, 45, 100 + 80 * k, 105), 0, 360) for k in range(3)],
                 size=(400, 150))
    cells = np.zeros_like(ink)
    cells[30:32, 40:362] = cells[118:120, 40:362] = 0.5
    for x in range(40, 361, 80):
        cells[30:120, x:x + 2] = 0.5
    grey = 235 - 200 * np.maximum(ink, cells)
    assert len(preprocess.number_line(grey).pieces) == 4


def test_pencil_grain_taken_for_a_mesh_of_holes_is_read_smoothed():
    """Two 0s in pencil: strokes 12 pixels wide, a quarter of their pixels and some 3x3
    patches bare. The grain's holes refuse them as no handwriting; `_writing` reads them
    again smoothed, as two digits (three cuts between pieces)."""
    rings = _drawn([("arc", (40, 20, 100, 100), 0, 360), ("arc", (140, 20, 200, 100), 0, 360)],
                   size=(260, 120), width=12)
    rng = np.random.default_rng(0)
    patches = ndimage.binary_dilation((rng.random(rings.shape) < 0.06) & (rings > 0.5))
    bare = patches | (rng.random(rings.shape) < 0.25)
    grey = 235 - 180 * np.where(bare, 0, rings)
    ink = preprocess.polarised(grey)
    region = preprocess._region(ink)
    with pytest.raises(preprocess.NotHandwriting):
        preprocess._keep_digit_components(preprocess.ink_map(grey, ink, region, True), True)
    assert len(preprocess.number_line(grey).pieces) == 3


def test_random_noise_is_no_digit_or_a_digit_never_an_exception():
    rng = np.random.default_rng(0)
    for side in (5, 28, 64):
        for _ in range(20):
            grey = preprocess.decode(_png((rng.random((side, side)) * 255).astype(np.uint8)))
            for fn in (preprocess.preprocess_digit, preprocess.preprocess_number):
                try:
                    out = fn(grey)
                except preprocess.NoDigitFound:
                    continue
                assert all(d.image.shape == (28, 28) for d in
                           (out if isinstance(out, list) else [out]))


@pytest.mark.slow
def test_worst_allowed_uploads_stay_within_memory_and_cpu_limits(tmp_path, shipped_checkpoint):
    """The worst uploads within the limits, in one request: under 256 MiB above the idle
    process at peak, under 1 s of CPU per image, and boxes in the upload's own pixels."""
    from bench.upload_memory import measure, write_worst_uploads

    facts = measure(shipped_checkpoint, write_worst_uploads(tmp_path))
    assert 0 < facts["peak_above_idle"] < 256 * 2**20, facts
    assert facts["cpu_per_image"] < 1.0, facts
    for x0, y0, x1, y1 in facts["boxes"]:
        assert abs(x0 - 2300) <= 16 and abs(x1 - 2700) <= 16, facts["boxes"]
        assert abs(y0 - 1500) <= 16 and abs(y1 - 3500) <= 16, facts["boxes"]


@pytest.mark.parametrize("kind", ["blank", "bricks", "grass", "noise", "qr"])
def test_pictures_without_a_digit_are_refused_as_no_digit(kind):
    from bench.uploads import non_digit_upload

    rng = np.random.default_rng(7)  # Not the seed the thresholds were chosen on (0).
    for _ in range(8):
        decoded = preprocess.decode(non_digit_upload(kind, rng))
        for read in (preprocess.preprocess_digit, preprocess.preprocess_number):
            with pytest.raises(preprocess.NoDigitFound):
                read(decoded)


def test_real_digits_and_numbers_are_not_refused_as_patterns(real_mnist):
    from bench.uploads import STYLES, digit_upload, number_upload

    rng = np.random.default_rng(8)
    images = real_mnist.test.images
    for style in STYLES:
        for i in rng.integers(0, len(images), 40):
            preprocess.preprocess_digit(preprocess.decode(digit_upload(images[i], style, rng)))
    for _ in range(40):
        digits = [images[i] for i in rng.integers(0, len(images), int(rng.integers(2, 7)))]
        preprocess.preprocess_number(preprocess.decode(number_upload(digits, rng)))


def test_a_cut_along_the_strokes_follows_the_gap_that_a_column_would_cross():
    ink = np.zeros((60, 80), np.float32)
    for y in range(60):  # Two strokes slanting right, 8 columns apart, a vertical cut crosses.
        ink[y, 20 + y // 4: 24 + y // 4] = 1.0
        ink[y, 32 + y // 4: 36 + y // 4] = 1.0
    path = preprocess._least_ink_path(ink, 36, 10)
    assert ink[:, 36].sum() > 0  # The straight cut would take ink from both strokes...
    assert ink[np.arange(60), path].sum() == 0  # ... the path takes none.
    assert np.all(np.abs(np.diff(path)) <= 1)
    left = preprocess.digit_between(ink, 0, path, 1.0, (80, 60))
    right = preprocess.digit_between(ink, path, 80, 1.0, (80, 60))
    assert left.box == (20, 0, 38, 60) and right.box == (32, 0, 50, 60)


def test_a_straight_path_cuts_as_its_column_does():
    ink = np.asarray(Image.fromarray(_stroke_digit(dark_on_light=False)), np.float32) / 255
    column = preprocess.digit_between(ink, 190, 260, 1.0, (300, 200))
    path = preprocess.digit_between(ink, np.full(200, 190), np.full(200, 260), 1.0, (300, 200))
    assert column.box == path.box
    np.testing.assert_array_equal(column.image, path.image)


def _stamp(shape: tuple[int, int], y: float, x: float, radius: float) -> np.ndarray:
    """A rubber stamp's ring, 8 pixels thick, every fifth arc of 4 degrees bare (patchy)."""
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]]
    ring = np.abs(np.hypot(gy - y, gx - x) - radius) <= 4
    return ring & ((np.floor(np.degrees(np.arctan2(gy - y, gx - x)) / 4) % 5) != 0)


def test_a_stamps_ring_across_a_number_goes_and_its_digits_stay():
    """A ring twice the line's height across a 1, a 0 and a 2 (`_without_stamp`): the ring
    is taken out, and the digits keep their pixels off its band."""
    digits = _drawn([("line", [(60, 20), (60, 80)]), ("arc", (100, 20, 140, 80), 0, 360),
                     *_two(170, 210)], size=(300, 160))
    ring = _stamp(digits.shape, 90, 150, 60)
    ink = np.maximum(digits, 0.7 * ring)
    out = preprocess._keep_digit_components(ink, True)
    assert not (out[ring & (ndimage.distance_transform_edt(digits < 0.5) > 6)] > 0).any()
    band = ndimage.binary_dilation(ring, iterations=4)
    assert (out[(digits > 0.5) & ~band] > 0.5).all()


def stamped_in_colour(ring_colour: tuple[int, int, int], pen: tuple[int, int, int]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A 1, a 0 and a 2 in `pen`'s colour under a patchy stamp's ring in `ring_colour`, both
    laid on white paper as inks do (multiplied): the ink `_keep_digit_components` is given
    (the darker of the two), the picture's colours (uint8 [h, w, 3]), the digits' strokes and
    the ring's."""
    digits = _drawn([("line", [(60, 20), (60, 80)]), ("arc", (100, 20, 140, 80), 0, 360),
                     *_two(170, 210)], size=(300, 160))
    ring = _stamp(digits.shape, 90, 150, 60)
    rgb = 255.0 * np.ones(digits.shape + (3,))
    for mask, colour in ((ring, ring_colour), (digits > 0.5, pen)):
        rgb = np.where(mask[..., None], rgb * np.asarray(colour) / 255, rgb)
    return np.maximum(digits, 0.7 * ring), rgb.astype(np.uint8), digits > 0.5, ring


def test_a_red_stamps_ring_goes_and_blue_digits_keep_every_pixel_under_it():
    """With the picture's colours (`_stamp_ink`), the ring's pixels go, but not where the pen
    crosses it: there, dark in red, the pixels are the pen's. Without them, the band goes
    from the digits too."""
    ink, rgb, digits, ring = stamped_in_colour((220, 40, 50), (40, 60, 200))
    out = preprocess._keep_digit_components(ink, True, rgb)
    assert not (out[ring & ~ndimage.binary_dilation(digits, iterations=3)] > 0).any()
    assert (out[digits] > 0.5).all()
    assert not (preprocess._keep_digit_components(ink, True)[digits & ring] > 0).any()


def test_a_stamps_ring_in_the_pens_colour_goes_as_without_colours():
    """A black ring over black digits: colour tells nothing (`RING_APART`), so the ring goes
    with the digits' pixels on its band, as it does without the picture's colours."""
    ink, rgb, digits, ring = stamped_in_colour((30, 30, 30), (30, 30, 30))
    out = preprocess._keep_digit_components(ink, True, rgb)
    np.testing.assert_array_equal(out, preprocess._keep_digit_components(ink, True))
    assert not (out[ring] > 0).any()


def test_a_stamps_ring_is_found_among_the_strokes_of_its_tint():
    """`_coloured_ring`: among a red ring's and blue digits' strokes, with the colours at twice
    the ink's size (`_resized`), the ring's circle."""
    ink, rgb, _, _ = stamped_in_colour((220, 40, 50), (40, 60, 200))
    big = np.asarray(Image.fromarray(rgb).resize((600, 320), Image.Resampling.NEAREST))
    strokes = ink > 0.5
    ring = preprocess._coloured_ring(
        strokes, preprocess._tint(strokes, preprocess._resized(big, ink.shape)))
    assert (ring.y, ring.x, ring.radius) == pytest.approx((90, 150, 60), abs=1.5)


def ring_across_every_digit() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A whole ring (not patchy) crossing each of a 1, a 0 and a 2: the ink, the digits'
    strokes and the ring's."""
    digits = _drawn([("line", [(100, 40), (100, 100)]), ("arc", (135, 40, 175, 100), 0, 360),
                     *_two(200, 240)], size=(340, 300))
    gy, gx = np.mgrid[0:300, 0:340]
    ring = np.abs(np.hypot(gy - 190, gx - 170) - 120) <= 4
    return np.maximum(digits, 0.7 * ring), digits, ring


def test_a_stamps_ring_that_joins_all_the_writing_goes():
    """A ring crossing each of three digits makes one piece of them, mostly ring: the
    writing's height is then its pieces off the ring, and the ring still goes."""
    ink, digits, ring = ring_across_every_digit()
    assert ndimage.label(ink > 0.5, structure=np.ones((3, 3)))[1] == 1
    out = preprocess._without_stamp(ink, ink > 0.5)
    assert out is not ink
    assert not (out[ring & (ndimage.distance_transform_edt(digits < 0.5) > 6)] > 0).any()


def test_a_zero_among_digits_is_no_stamps_ring():
    """A round 0 beside two 1s is a ring of ink no wider than the writing is tall: it stays."""
    ink = _drawn([("line", [(60, 20), (60, 80)]), ("arc", (100, 20, 160, 80), 0, 360),
                  ("line", [(200, 20), (200, 80)])])
    assert preprocess._without_stamp(ink, ink > 0.5) is ink


def _disc(shape: tuple[int, int], y: float, x: float, radius: float) -> np.ndarray:
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]]
    return (np.hypot(gy - y, gx - x) <= radius).astype(np.float32)


def punched_number() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 1, a 0 and a 2 with two of a ring binder's holes (solid discs 20 pixels across) in a
    column beside them, and a third cut by the picture's side: the ink, the digits' and the
    holes'."""
    digits = _drawn([("line", [(100, 40), (100, 100)]), ("arc", (135, 40, 175, 100), 0, 360),
                     *_two(200, 240)], size=(300, 160))
    holes = np.maximum.reduce([_disc(digits.shape, y, 40, 10) for y in (30, 90)]
                              + [_disc(digits.shape, 150, 280, 12)])
    return np.maximum(digits, holes), digits, holes


def test_punched_holes_beside_a_number_go_and_its_digits_stay():
    """Punched holes beside a number and one cut by the picture's side (`_discs`): none is
    kept, every digit pixel is."""
    ink, digits, holes = punched_number()
    out = preprocess._keep_digit_components(ink, True)
    assert not (out[holes > 0] > 0).any()
    assert (out[digits > 0.5] > 0.5).all()


def test_a_bold_zero_and_a_disc_alone_are_no_punched_holes():
    """A 0 drawn 12 pixels thick, its hole small, beside a 1: its middle is near a stroke's
    edge, so it is no disc. A solid disc alone is what there is to read: it stays."""
    ink = _drawn([("arc", (40, 20, 90, 80), 0, 360), ("line", [(130, 20), (130, 80)])],
                 width=12)
    labels, n = ndimage.label(ink > 0.5, structure=np.ones((3, 3)))
    assert not preprocess._discs(labels, np.bincount(labels.ravel())[1:]).any()
    disc = _disc((120, 120), 60, 60, 20)
    assert (preprocess._keep_digit_components(disc) > 0).sum() >= (disc > 0).sum()


def test_a_solid_blob_that_is_no_circle_is_no_punched_hole():
    """A filled square 30 pixels wide beside a 1 (a bold 8 whose loops closed is such a blob):
    square, solid, its middle half its side from the paper, but it fills about 0.64 of the
    circle about its centre (`DISC_ROUND`), so it is no disc; a disc as wide in its place is."""
    one = _drawn([("line", [(130, 20), (130, 80)])])
    square = np.zeros_like(one)
    square[35:65, 40:70] = 1.0
    disc = _disc(one.shape, 50, 55, 15)
    found = []
    for blob in (square, disc):
        labels, n = ndimage.label(np.maximum(one, blob) > 0.5, structure=np.ones((3, 3)))
        found.append(preprocess._discs(labels, np.bincount(labels.ravel())[1:])[labels[50, 55] - 1])
    assert found == [False, True]


def _clip(size: tuple[int, int], box: tuple[int, int, int, int], wire: int = 2) -> np.ndarray:
    """A paper clip standing upright: two nested loops of wire `wire` pixels thick, the outer
    one `box` (x0, y0, x1, y1)."""
    from PIL import ImageDraw

    canvas = Image.new("L", size)
    draw = ImageDraw.Draw(canvas)
    x0, y0, x1, y1 = box
    inset = (x1 - x0) // 4
    draw.rounded_rectangle(box, radius=(x1 - x0) // 2, outline=255, width=wire)
    draw.rounded_rectangle((x0 + inset, y0 + inset, x1 - inset, y1 - 2 * inset),
                           radius=(x1 - x0) // 2 - inset, outline=255, width=wire)
    return np.asarray(canvas, np.float32) / 255


def test_a_paper_clip_across_a_number_goes_and_its_digits_stay():
    """A clip of 2-pixel wire standing twice the line's height across the 0 of a 1, a 0 and
    a 2 written 8 pixels wide (`_without_wire`, looked for as what is kept stands taller than
    its pieces): the wire goes, but where it crosses the 0's strokes, and the digits keep every
    pixel."""
    digits = _drawn([("line", [(60, 40), (60, 100)]), ("arc", (100, 40, 140, 100), 0, 360),
                     ("arc", (170, 40, 206, 70), 180, 40), ("line", [(203, 62), (170, 100)]),
                     ("line", [(170, 100), (210, 100)])], size=(300, 160), width=8)
    clip = _clip(digits.shape[::-1], (110, 5, 150, 125))
    out = preprocess._keep_digit_components(np.maximum(digits, 0.8 * clip), True)
    assert not (out[(clip > 0.5) & (ndimage.distance_transform_edt(digits < 0.5) > 3)] > 0).any()
    assert (out[digits > 0.5] > 0.5).all()


def test_writing_all_in_fine_strokes_has_no_wire():
    """Touching digits written with a fine pen (2 pixels), a piece twice the line's height
    long: no stroke is thinner than the writing's by `WIRE_THIN`, so nothing goes."""
    ink = _drawn([("arc", (40, 20, 100, 80), 0, 360), ("arc", (98, 20, 158, 80), 0, 360),
                  ("line", [(200, 20), (200, 80)])], width=2)
    assert preprocess._without_wire(ink, ink > 0.5) is ink


def test_a_dotted_line_of_thin_dashes_is_no_wire():
    """Thin dashes (2 pixels, 10 long, 4 apart) in a row under bold 0s, two and a half line
    heights long together: each dash is under `WIRE_PIECE` of the line long (bits of grain or
    print), so none is a wire's piece and nothing goes."""
    ink = _drawn([("arc", (40, 20, 100, 80), 0, 360), ("arc", (120, 20, 180, 80), 0, 360)],
                 width=8)
    for x in range(40, 190, 14):
        ink[96:98, x:x + 10] = 1.0
    assert preprocess._without_wire(ink, ink > 0.5) is ink


def test_a_thin_digit_beside_bold_ones_is_no_wire():
    """A 1 written thin (2 pixels) beside bold 0s (8 pixels), as tall as they are: thin, but
    shorter than `WIRE_LONG` line heights, so it stays."""
    ink = _drawn([("arc", (40, 20, 100, 80), 0, 360), ("arc", (120, 20, 180, 80), 0, 360)],
                 width=8)
    ink = np.maximum(ink, _drawn([("line", [(220, 20), (220, 80)])], width=2))
    assert preprocess._without_wire(ink, ink > 0.5) is ink


@pytest.mark.parametrize("degrees", [6, 3])  # 15 fragments; 30, more than MAX_PIECES.
def test_a_faint_digit_broken_by_grain_into_specks_is_kept_whole(degrees):
    """A bold 0 and a faint one that grain broke into fragments 2-3 pixels apart, each under a
    twentieth of the bold 0's pixels (`_with_fragments`): the fragments are kept, counted as
    one piece (not as a pattern's many), and the line holds two digits (three cuts between
    pieces)."""
    bold = _drawn([("arc", (40, 20, 100, 100), 0, 360)], size=(260, 120), width=8)
    faint = _drawn([("arc", (140, 20, 200, 100), 0, 360)], size=(260, 120), width=4)
    gy, gx = np.mgrid[0:120, 0:260]
    faint[(np.floor(np.degrees(np.arctan2(gy - 60, gx - 170)) / degrees) % 4) == 0] = 0
    ink = np.maximum(bold, 0.4 * faint)
    sizes = np.bincount(preprocess.stroke_pieces(ink)[0].ravel())[1:]
    assert len(sizes) > 10 and np.sort(sizes)[-2] < 0.05 * sizes.max()
    kept = preprocess._keep_digit_components(ink, True)
    assert (kept[faint > 0.5] > 0).all()
    assert len(preprocess.segment_number(kept)[1]) == 3


def test_a_bold_five_written_in_two_strokes_is_no_stamp(monkeypatch):
    """A 5 drawn with a broad brush on a transparent canvas (tests/data/bold_five.png, a
    realistic upload of MNIST test digit 3826 that session 18's first ring search took
    apart): its bar stands much shorter than its bowl, so the ring is looked for, and a
    circle through both fills its arcs on the sample but not refitted (`frames._covers`).
    The digit reads as it does with no ring search at all."""
    from pathlib import Path

    raw = (Path(__file__).parent / "data" / "bold_five.png").read_bytes()
    digit = preprocess.preprocess_digit(preprocess.decode(raw)).image
    monkeypatch.setattr(preprocess, "_without_stamp", lambda ink, strokes, rgb=None: ink)
    np.testing.assert_array_equal(digit, preprocess.preprocess_digit(preprocess.decode(raw)).image)
