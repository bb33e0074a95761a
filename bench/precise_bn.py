"""Precise BN on finished runs: validation (and test) accuracy of each run's final checkpoint
with the running BatchNorm averages kept while training, and with the statistics re-estimated
on the run's own clean training images (`evaluate.precise_batch_stats`, the export default).

  python bench/precise_bn.py --data-dir DIR --models runs/recipe runs/recipe3 ...

Choose on the validation columns; test is printed to be recorded, not to choose by.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--models", nargs="+", required=True, help="training workdirs")
    args = parser.parse_args()

    from hdr_jax import parallel

    parallel.use_cpu_devices(os.cpu_count() or 1)  # as train.py does for batch 128
    from bench.common import header
    from hdr_jax import data, evaluate
    from hdr_jax.config import TrainConfig

    header("precise BN: running vs re-estimated BatchNorm statistics")
    mnist = data.load_mnist(args.data_dir)
    print(f"  {'run':<12} {'val':>7} {'val loss':>9} {'test':>7}   {'precise: val':>12} "
          f"{'val loss':>9} {'test':>7}")
    gains, lower_loss, seconds = [], 0, []
    for workdir in args.models:
        config = TrainConfig.from_dict(json.loads((Path(workdir) / "config.json").read_text()))
        train_split, val_split = data.training_splits(mnist, config)
        variables, info = evaluate.load_model(workdir)
        start = time.perf_counter()
        precise = evaluate.with_precise_batch_stats(variables, config.model, train_split.images)
        seconds.append(time.perf_counter() - start)
        row = []
        for v in (variables, precise):
            val = evaluate.evaluate_variables(v, info, val_split)[0] if len(val_split) else None
            test = evaluate.evaluate_variables(v, info, mnist.test)[0]
            row.append((val, test))
        (val0, test0), (val1, test1) = row
        pct = lambda r: "—" if r is None else f"{100 * r['accuracy']:.2f}%"
        loss = lambda r: "—" if r is None else f"{r['loss']:.4f}"
        print(f"  {Path(workdir).name:<12} {pct(val0):>7} {loss(val0):>9} {pct(test0):>7}   "
              f"{pct(val1):>12} {loss(val1):>9} {pct(test1):>7}", flush=True)
        if val0 is not None:
            gains.append(val1["accuracy"] - val0["accuracy"])
            lower_loss += val1["loss"] < val0["loss"]
    if gains:
        print(f"  validation: mean change {100 * sum(gains) / len(gains):+.3f} points over "
              f"{len(gains)} runs; loss lower in {lower_loss} of {len(gains)}")
    print(f"  re-estimating the statistics took {min(seconds):.1f}-{max(seconds):.1f} s per run "
          f"(including its compile)")


if __name__ == "__main__":
    main()
