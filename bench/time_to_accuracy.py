"""Time to accuracy on this CPU: wall seconds from start until the test accuracy first reaches
99.0% and 99.5%, and the final accuracy, for our default recipe and for the PyTorch
examples/mnist recipe (conv32-conv64-fc128, Adadelta lr 1.0, StepLR gamma 0.7, batch 64,
14 epochs) on the same data, run one after the other.

  python bench/time_to_accuracy.py --data-dir DIR [--ours-workdir runs/x] [--skip-ours]

With --ours-workdir pointing at a finished run of the default recipe, our side is read from its
metrics.jsonl (seconds per epoch include the per-epoch evaluation) instead of training again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import header  # noqa: E402
from hdr_jax import data  # noqa: E402


def pytorch_examples_mnist(mnist: data.Mnist, epochs: int = 14, seed: int = 1) -> list[dict]:
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(seed)

    class Net(nn.Module):  # pytorch/examples mnist/main.py
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = F.relu(self.conv1(x))
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = torch.flatten(self.dropout1(x), 1)
            x = self.dropout2(F.relu(self.fc1(x)))
            return F.log_softmax(self.fc2(x), dim=1)

    def tensors(split):
        x = torch.from_numpy(split.images.astype(np.float32) / 255.0).unsqueeze(1)
        return (x - 0.1307) / 0.3081, torch.from_numpy(split.labels.astype(np.int64))

    x_train, y_train = tensors(mnist.train)
    x_test, y_test = tensors(mnist.test)
    model = Net()
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    records, start = [], time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x_train))
        for i in range(0, len(order), 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            F.nll_loss(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(x_test[i:i + 1000]).argmax(1) == y_test[i:i + 1000]).sum())
                          for i in range(0, len(x_test), 1000))
        records.append({"epoch": epoch, "seconds": time.perf_counter() - start,
                        "test_accuracy": correct / len(x_test)})
        print(f"  pytorch epoch {epoch}: {records[-1]}", flush=True)
    return records


def ours(mnist: data.Mnist, workdir: str | None) -> list[dict]:
    if workdir and (Path(workdir) / "metrics.jsonl").is_file():
        lines = (Path(workdir) / "metrics.jsonl").read_text().splitlines()
        elapsed, records = 0.0, []
        for r in map(json.loads, lines):
            elapsed += r["seconds"]
            records.append({"epoch": r["epoch"], "seconds": elapsed,
                            "test_accuracy": r["test_accuracy"]})
        return records
    from hdr_jax.config import TrainConfig
    from hdr_jax.train import train_and_evaluate

    workdir = workdir or "runs/time-to-accuracy"
    start = time.perf_counter()
    train_and_evaluate(TrainConfig(workdir=workdir), mnist, progress=False)
    print(f"  ours: {time.perf_counter() - start:.0f} s in all")
    return ours(mnist, workdir)


def first_reaching(records: list[dict], threshold: float) -> str:
    for r in records:
        if r["test_accuracy"] >= threshold:
            return f"{r['seconds']:.0f} s (epoch {r['epoch']})"
    return "never"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--ours-workdir")
    p.add_argument("--skip-ours", action="store_true")
    p.add_argument("--pytorch-epochs", type=int, default=14)
    args = p.parse_args()
    header("time to accuracy (test set, wall seconds from start)")
    mnist = data.load_idx_dir(args.data_dir)
    results = {}
    if not args.skip_ours:
        results["hdr-jax default recipe"] = ours(mnist, args.ours_workdir)
    results["pytorch examples/mnist"] = pytorch_examples_mnist(mnist, args.pytorch_epochs)
    print(f"\n  {'recipe':<26}{'to 99.0%':>20}{'to 99.5%':>20}{'final':>9}")
    for name, records in results.items():
        print(f"  {name:<26}{first_reaching(records, 0.99):>20}"
              f"{first_reaching(records, 0.995):>20}{records[-1]['test_accuracy']:9.2%}")


if __name__ == "__main__":
    main()
