"""Training examples cut from written lines the way the number reader cuts them."""

import dataclasses
import itertools

import numpy as np
import pytest

from hdr_jax import data, preprocess, spans
from hdr_jax.config import TrainConfig

# Two digits of ink 10 columns wide, at columns 0-9 and 12-21, one unit of ink per column.
TWO_DIGITS = [(0, 0, np.ones((1, 10))), (12, 0, np.ones((1, 10)))]


@pytest.mark.parametrize("x0, x1, expected", [
    (0, 10, 0), (0, 12, 0), (12, 22, 1),
    (0, 14, 0),  # The first digit and 2 columns of the second: a sliver, still the first.
    (5, 17, spans.NO_DIGIT),  # Half of each: no digit.
    (0, 22, spans.NO_DIGIT),
    (0, 15, None),  # The first and 3 columns of the second: neither one digit nor two.
    (0, 5, spans.PART_OF_DIGIT),  # Half a digit.
    (0, 7, None),  # 7 columns of 10: most of a digit, not all of it.
    (3, 15, None),  # 7 columns of the first and 3 of the second: neither.
])
def test_a_span_is_the_digit_it_holds_no_digit_for_two_a_part_or_none(x0, x1, expected):
    assert spans.span_label(x0, x1, TWO_DIGITS) == expected


def test_a_span_between_paths_counts_the_ink_row_by_row():
    # Two rows; the cut runs at column 12 in the first row and 16 in the second: the second
    # digit's first four columns of the second row fall on the first digit's side.
    placed = [(0, 0, np.ones((2, 10))), (12, 0, np.ones((2, 10)))]
    assert spans.span_label(0, np.array([12, 16]), placed) == 0  # 4 units of 20: a sliver.
    assert spans.span_label(np.array([12, 16]), 22, placed) is None  # 16 of 20: not whole.
    assert spans.span_label(np.array([12, 14]), 22, placed) == 1  # 18 of 20: whole.


def test_the_spans_between_pieces_of_a_line_with_gaps_are_its_digits_in_order(
        real_mnist, monkeypatch):
    monkeypatch.setattr(spans, "TOUCHING", 0.0)  # Every neighbour apart.
    rng = np.random.default_rng(3)
    for _ in range(5):
        pick = rng.integers(0, 1000, 4)
        line, placed = spans.write_line(real_mnist.train.images[pick], rng)
        cuts, pieces, _, _ = preprocess.segment_number(line)
        assert [spans.span_label(cuts[i], cuts[j], placed)
                for i, j in itertools.pairwise(pieces)] == [0, 1, 2, 3]


def test_a_line_gives_its_own_digits_and_no_digit_examples_in_mnist_format(real_mnist):
    rng = np.random.default_rng(0)
    labels, seen = set(), []
    for _ in range(10):
        pick = rng.integers(0, 1000, 3)
        images, targets = spans.line_examples(real_mnist.train.images[pick],
                                              real_mnist.train.labels[pick], rng)
        assert all(im.shape == (28, 28) and im.dtype == np.uint8 for im in images)
        assert set(targets) <= {*real_mnist.train.labels[pick].tolist(), spans.NO_DIGIT}
        labels |= set(targets)
        seen += images
    assert spans.NO_DIGIT in labels and len(labels) > 2
    assert all(im.max() == 255 for im in seen)  # Brought to full ink, as the reader does.


def test_parts_of_digits_are_no_digit_examples_only_when_asked(real_mnist):
    def examples(parts: bool) -> tuple[list[np.ndarray], list[int]]:
        rng = np.random.default_rng(4)
        pick = rng.integers(0, 1000, 4)
        return spans.line_examples(real_mnist.train.images[pick],
                                   real_mnist.train.labels[pick], rng, parts)

    (plain, plain_targets), (more, more_targets) = examples(False), examples(True)
    assert len(more) > len(plain)
    # The same spans in the same order, and the parts among them as "no digit".
    kept = iter(zip(more, more_targets, strict=True))
    for image, target in zip(plain, plain_targets, strict=True):
        for other, other_target in kept:
            if np.array_equal(other, image) and other_target == target:
                break
            assert other_target == spans.NO_DIGIT
        else:
            raise AssertionError("a span without parts is missing with them")


def test_line_spans_add_exactly_n_seeded_examples_after_the_training_digits(real_mnist):
    split = real_mnist.train.take(slice(0, 2000))
    a = spans.with_line_spans(split, 300, seed=0)
    assert len(a) == 2300
    np.testing.assert_array_equal(a.images[:2000], split.images)
    np.testing.assert_array_equal(a.labels[:2000], split.labels)
    b = spans.with_line_spans(split, 300, seed=0)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, spans.with_line_spans(split, 300, seed=1).images)


def test_the_training_split_carries_the_line_spans_and_validation_stays_mnist(real_mnist):
    config = TrainConfig(validation_size=1000, train_limit=3000, line_spans=200)
    train_split, val_split = data.training_splits(real_mnist, config)
    plain_train, plain_val = data.training_splits(real_mnist, TrainConfig(
        validation_size=1000, train_limit=3000))
    assert len(train_split) == 3200
    np.testing.assert_array_equal(val_split.images, plain_val.images)
    np.testing.assert_array_equal(train_split.images[:3000], plain_train.images)


def test_digits_that_give_no_spans_stop_with_a_data_error():
    blank = data.Split(np.zeros((10, 28, 28), np.uint8), np.zeros(10, np.int32))
    with pytest.raises(data.DataError, match="gave 0 of 5 span examples"):
        spans.with_line_spans(blank, 5, seed=0)


def test_precise_bn_averages_over_the_whole_training_split_or_its_digits_alone(real_mnist):
    from hdr_jax.evaluate import precise_bn_images

    config = TrainConfig(validation_size=1000, train_limit=3000, line_spans=200)
    digits, _ = data.training_splits(real_mnist, dataclasses.replace(config, line_spans=0))
    np.testing.assert_array_equal(precise_bn_images(real_mnist, config, "precise-digits"),
                                  digits.images)
    everything = precise_bn_images(real_mnist, config, "precise")
    assert len(everything) == 3200
    np.testing.assert_array_equal(everything[:3000], digits.images)


def test_a_photographed_line_is_dark_ink_on_lighter_paper_with_a_margin_around_it():
    line = np.zeros((40, 60), np.float32)
    line[10:30, 20:24] = 1.0  # One bold stroke.
    grey, pad = spans.photograph(line, np.random.default_rng(0))
    assert 8 <= pad < 40 and grey.shape == (40 + 2 * pad, 60 + 2 * pad)
    assert grey.dtype == np.float32 and grey.min() >= 0 and grey.max() <= 1
    stroke = grey[pad + 12:pad + 28, pad + 21:pad + 23]
    assert stroke.mean() < grey[:pad].mean() - 0.2  # Ink darker than the paper around it.


def test_photographed_spans_are_seeded_and_are_not_the_plain_spans(real_mnist):
    split = real_mnist.train.take(slice(0, 2000))
    a = spans.with_line_spans(split, 200, seed=0, photographed=True)
    b = spans.with_line_spans(split, 200, seed=0, photographed=True)
    assert len(a) == 2200
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    plain = spans.with_line_spans(split, 200, seed=0)
    assert not np.array_equal(a.images[2000:], plain.images[2000:])
    assert set(np.unique(a.labels[2000:])) <= set(range(11))


def test_nine_in_ten_photographed_spans_of_one_digit_read_as_their_label(real_mnist,
                                                                          shipped_checkpoint):
    # The labels come from the clean line; the images from the photo the reader found ink in.
    # Were they out of step (a shifted margin, a wrong digit), the model would disagree.
    from hdr_jax.inference import Predictor

    split = real_mnist.train.take(slice(0, 2000))
    photographed = spans.with_line_spans(split, 400, seed=3, photographed=True)
    images, labels = photographed.images[2000:], photographed.labels[2000:]
    one_digit = labels < spans.NO_DIGIT
    assert 100 <= one_digit.sum() < len(labels)  # Both kinds of span are there.
    predictor = Predictor.from_checkpoint(shipped_checkpoint)
    read = predictor.predict(images[one_digit] / 255.0)[:, :spans.NO_DIGIT].argmax(-1)
    assert np.mean(read == labels[one_digit]) >= 0.9


def test_the_training_split_carries_the_photographed_spans_after_the_plain_ones(real_mnist):
    config = TrainConfig(validation_size=1000, train_limit=3000, line_spans=200,
                         photo_spans=100)
    train_split, _ = data.training_splits(real_mnist, config)
    plain, _ = data.training_splits(real_mnist, dataclasses.replace(config, photo_spans=0))
    assert len(train_split) == 3300
    np.testing.assert_array_equal(train_split.images[:3200], plain.images)
    from hdr_jax.evaluate import precise_bn_images

    assert len(precise_bn_images(real_mnist, config, "precise-digits")) == 3000
