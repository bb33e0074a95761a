"""Test-time augmentation and small ensembles, chosen on validation, reported on test.

Each model is evaluated alone and with TTA (`augment.tta_views`); then the mean of all the
models' probabilities, with and without TTA. Validation is the split each run held out (all our
runs use the same one: the seed and size are the recipe's); a choice is made on the validation
column, the test column is reported beside it.

  python bench/tta_ensemble.py --data-dir DIR --models runs/recipe runs/recipe3 [...]

`--models` takes training workdirs (their final checkpoint) or inference checkpoints with
metrics.json (for the config that names the validation split).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdr_jax import parallel  # noqa: E402

parallel.use_cpu_devices(os.cpu_count() or 1)  # As train.py does for batch 128.

import numpy as np  # noqa: E402

from bench.common import header  # noqa: E402
from hdr_jax import data, evaluate  # noqa: E402
from hdr_jax.config import TrainConfig  # noqa: E402


def _config(path: Path) -> TrainConfig:
    source = path / "config.json" if (path / "config.json").is_file() else path / "metrics.json"
    d = json.loads(source.read_text())
    return TrainConfig.from_dict(d.get("config", d))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--models", nargs="+", required=True)
    args = p.parse_args()
    header("test-time augmentation and ensembles (accuracy; choose on validation)")
    mnist = data.load_mnist(args.data_dir)
    configs = [_config(Path(m)) for m in args.models]
    splits = {(c.validation_size, c.seed) for c in configs}
    if len(splits) != 1:
        sys.exit("error: the models held out different validation splits")
    _, val = data.holdout(mnist.train, configs[0].validation_size, configs[0].seed)
    rows, probs = [], {}
    for model in args.models:
        variables, info = evaluate.load_model(model)
        for tta in (False, True):
            probs[model, tta] = {name: evaluate.evaluate_variables(variables, info, split,
                                                                 tta=tta)[1]
                                 for name, split in (("val", val), ("test", mnist.test))}
            rows.append((f"{model}{' + TTA' if tta else ''}", probs[model, tta]))
    if len(args.models) > 1:
        for tta in (False, True):
            mean = {name: np.mean([probs[m, tta][name] for m in args.models], axis=0)
                    for name in ("val", "test")}
            rows.append((f"ensemble of {len(args.models)}{' + TTA' if tta else ''}", mean))
    width = max(len(name) for name, _ in rows) + 2
    print(f"\n  {'model':<{width}}{'val':>8}{'test':>8}{'test errors':>13}")
    for name, p in rows:
        val_acc = np.mean(p["val"][:, :data.NUM_CLASSES].argmax(-1) == val.labels)
        test_hits = p["test"][:, :data.NUM_CLASSES].argmax(-1) == mnist.test.labels
        print(f"  {name:<{width}}{val_acc:8.2%}{test_hits.mean():8.2%}"
              f"{int((~test_hits).sum()):>13}")


if __name__ == "__main__":
    main()
