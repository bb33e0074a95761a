"""Classification metrics against hand-computed values, and the report files."""

import json

import numpy as np
import pytest

from hdr_jax import metrics
from hdr_jax.data import Split


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    cm = metrics.confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 2, 0]),
                                  num_classes=3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_classification_report_matches_hand_computed_values():
    report = metrics.classification_report(np.array([0, 0, 1, 2, 2, 2]),
                                           np.array([0, 1, 1, 2, 2, 0]), num_classes=3)
    assert report["accuracy"] == pytest.approx(4 / 6)
    # class 0: tp 1, predicted 2, support 2; class 1: tp 1, predicted 2, support 1;
    # class 2: tp 2, predicted 2, support 3.
    expected = {"0": (0.5, 0.5), "1": (0.5, 1.0), "2": (1.0, 2 / 3)}
    for c, (precision, recall) in expected.items():
        r = report["per_class"][c]
        assert (r["precision"], r["recall"]) == pytest.approx((precision, recall))
        assert r["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert report["macro_avg"]["recall"] == pytest.approx((0.5 + 1.0 + 2 / 3) / 3)
    assert report["weighted_avg"]["recall"] == pytest.approx(report["accuracy"])
    assert report["macro_avg"]["support"] == 6


def test_a_class_never_predicted_has_zero_precision_not_nan():
    report = metrics.classification_report(np.array([0, 1]), np.array([0, 0]), num_classes=2)
    assert report["per_class"]["1"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                        "support": 1}


def test_report_from_probabilities_adds_the_loss_and_count():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    report = metrics.report_from_probabilities(np.array([0, 1, 1]), probabilities)
    assert report["count"] == 3 and report["accuracy"] == pytest.approx(2 / 3)
    assert report["loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4])))


def test_an_eleventh_not_one_digit_class_is_never_the_reported_digit():
    probabilities = np.zeros((2, 11))
    probabilities[0, [3, 10]] = [0.3, 0.7]  # Most likely "not one digit"; of the digits, 3.
    probabilities[1, [4, 10]] = [0.9, 0.1]
    report = metrics.report_from_probabilities(np.array([3, 5]), probabilities)
    assert report["accuracy"] == 0.5
    assert report["confusion_matrix"][3][3] == 1 and report["confusion_matrix"][5][4] == 1
    assert report["loss"] == pytest.approx(-np.mean(np.log([0.3, 1e-12])))


def test_report_text_and_files(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 50)
    probabilities = rng.dirichlet(np.ones(10), 50)
    report = metrics.report_from_probabilities(labels, probabilities)
    text = metrics.format_report(report)
    assert "macro avg" in text and "weighted avg" in text and len(text.splitlines()) == 16
    assert "confusion matrix" in metrics.format_confusion_matrix(report["confusion_matrix"])
    split = Split(rng.integers(0, 256, (50, 28, 28), np.uint8), labels.astype(np.int32))
    curves = tmp_path / "metrics.jsonl"
    curves.write_text("".join(json.dumps({"epoch": e, "train_loss": 1 / e, "test_loss": 1 / e,
                                          "train_accuracy": 0.99, "test_accuracy": 0.99}) + "\n"
                              for e in (1, 2)))
    metrics.write_report_dir(tmp_path / "out", report, split, probabilities, curves)
    for name in ("confusion_matrix.png", "misclassified.png", "training_curves.png"):
        assert (tmp_path / "out" / name).stat().st_size > 1000, name
    assert json.loads((tmp_path / "out" / "report.json").read_text())["count"] == 50
