"""Classification metrics and the pictures people would rather look at than read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hdr_jax.data import NUM_CLASSES  # The digits; a model may have an 11th class.


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray,
                     num_classes: int = NUM_CLASSES) -> np.ndarray:
    """[true, predicted] counts."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(labels), np.asarray(predictions)), 1)
    return cm


def classification_report(labels: np.ndarray, predictions: np.ndarray,
                          num_classes: int = NUM_CLASSES) -> dict:
    """Per-class precision, recall, F1 and support, their macro and weighted averages, accuracy
    and the confusion matrix."""
    cm = confusion_matrix(labels, predictions, num_classes)
    tp = np.diag(cm).astype(float)
    support = cm.sum(1)
    predicted = cm.sum(0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    per_class = {
        str(c): {"precision": float(precision[c]), "recall": float(recall[c]),
                 "f1": float(f1[c]), "support": int(support[c])}
        for c in range(num_classes)
    }
    total = int(support.sum())
    weights = support / max(total, 1)
    return {
        "accuracy": float(tp.sum() / max(total, 1)),
        "per_class": per_class,
        "macro_avg": {"precision": float(precision.mean()), "recall": float(recall.mean()),
                      "f1": float(f1.mean()), "support": total},
        "weighted_avg": {"precision": float(weights @ precision),
                         "recall": float(weights @ recall), "f1": float(weights @ f1),
                         "support": total},
        "confusion_matrix": cm.tolist(),
    }


def report_from_probabilities(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    """`classification_report` of the most probable digits (of the first 10 classes: a model
    may have an 11th, "not one digit"), plus the mean cross-entropy (`loss`) and the number of
    examples (`count`)."""
    report = classification_report(labels, probabilities[:, :NUM_CLASSES].argmax(-1))
    picked = probabilities[np.arange(len(labels)), labels]
    report["loss"] = float(-np.mean(np.log(np.maximum(picked, 1e-12))))
    report["count"] = int(len(labels))
    return report


def format_report(report: dict) -> str:
    """The classic text classification report."""
    lines = [f"{'':>12}{'precision':>10}{'recall':>10}{'f1-score':>10}{'support':>10}", ""]
    row = lambda name, r: (f"{name:>12}{r['precision']:>10.4f}{r['recall']:>10.4f}"
                           f"{r['f1']:>10.4f}{r['support']:>10d}")
    lines += [row(c, r) for c, r in report["per_class"].items()]
    total = report["macro_avg"]["support"]
    lines += ["", f"{'accuracy':>12}{'':>20}{report['accuracy']:>10.4f}{total:>10d}",
              row("macro avg", report["macro_avg"]), row("weighted avg", report["weighted_avg"])]
    return "\n".join(lines)


def format_confusion_matrix(cm: list[list[int]]) -> str:
    lines = ["", "confusion matrix (rows: true, columns: predicted)"]
    lines += [f"  {c}: " + " ".join(f"{v:5d}" for v in row) for c, row in enumerate(cm)]
    return "\n".join(lines)


def write_report_dir(out: str | Path, report: dict, split, probabilities: np.ndarray,
                     curves: str | Path | None = None) -> None:
    """report.json, the confusion matrix, the misclassified digits and (given a run's
    metrics.jsonl) the training curves, as files in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plot_confusion_matrix(np.array(report["confusion_matrix"]), out / "confusion_matrix.png")
    digits = probabilities[:, :NUM_CLASSES]
    plot_misclassified(split.images, split.labels, digits.argmax(-1), digits.max(-1),
                       out / "misclassified.png")
    if curves is not None:
        plot_training_curves(curves, out / "training_curves.png")
    (out / "report.json").write_text(json.dumps(report, indent=2))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(cm: np.ndarray, path: str | Path) -> None:
    plt = _pyplot()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(7, 6))
    # Log colour scale: the off-diagonal errors are what matter and they are tiny.
    im = ax.imshow(np.log1p(cm), cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if i == j else ("crimson" if cm[i, j] else "grey"))
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true",
           title="Confusion matrix (MNIST test)")
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_misclassified(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray,
                       confidences: np.ndarray, path: str | Path, limit: int = 100) -> None:
    plt = _pyplot()
    wrong = np.flatnonzero(labels != predictions)[:limit]
    cols = 10
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.45), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong, strict=False):
        ax.imshow(images[i], cmap="gray_r")
        ax.set_title(f"#{i} {labels[i]}→{predictions[i]}\n{confidences[i]:.2f}", fontsize=7)
    fig.suptitle(f"Misclassified test digits: index true→predicted, confidence ({len(wrong)})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training_curves(metrics_jsonl: str | Path, path: str | Path) -> bool:
    """Loss and accuracy per epoch from a run's metrics.jsonl; False if there is none."""
    metrics_jsonl = Path(metrics_jsonl)
    if not metrics_jsonl.is_file():
        return False
    records = [json.loads(line) for line in metrics_jsonl.read_text().splitlines() if line]
    if not records:
        return False
    plt = _pyplot()
    epochs = [r["epoch"] for r in records]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("train_loss", "val_loss", "test_loss"):
        if key in records[0]:
            ax1.plot(epochs, [r[key] for r in records], marker="o", label=key)
    for key in ("train_accuracy", "val_accuracy", "test_accuracy"):
        if key in records[0]:
            ax2.plot(epochs, [100 * r[key] for r in records], marker="o", label=key)
    ax1.set(xlabel="epoch", ylabel="loss", yscale="log", title="Loss")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", ylim=(98, 100), title="Accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
