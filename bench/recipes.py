"""The recipe comparison table, read from finished (or stopped) training runs.

  python bench/recipes.py runs/recipe3 runs/recipe6 ... [--curves]

For each workdir: how its config differs from today's `TrainConfig` defaults, epochs run of
those planned, the final validation and test accuracy, and the wall seconds (training plus the
per-epoch evaluation, from metrics.jsonl). Recipes are chosen on the validation column; test is
recorded after every epoch (`--curves` prints both per epoch) but never used to choose.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import header  # noqa: E402
from hdr_jax.config import TrainConfig  # noqa: E402

# Fields that say where a run lives or how it logs, not what it learns.
_NOT_RECIPE = {"data_dir", "workdir", "checkpoint_every_steps", "keep_checkpoints",
               "log_every_steps", "eval_batch_size"}


def recipe_changes(config: dict, defaults: dict | None = None, prefix: str = "") -> list[str]:
    """`key=value` for every recipe field of `config` that differs from the defaults."""
    defaults = TrainConfig().to_dict() if defaults is None else defaults
    changes = []
    for key, value in config.items():
        if key in _NOT_RECIPE or key not in defaults:
            continue
        if isinstance(value, dict):
            changes += recipe_changes(value, defaults[key], f"{prefix}{key}.")
        elif _plain(value) != _plain(defaults[key]):
            changes.append(f"{prefix}{key}={_plain(value)}")
    return changes


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def summarise(workdir: Path) -> dict:
    config = json.loads((workdir / "config.json").read_text())
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1] if rows else {}
    return {
        "run": workdir.name,
        "changes": ", ".join(recipe_changes(config)) or "default",
        "epochs": f"{int(last.get('epoch', 0))}/{config['epochs']}",
        "val": last.get("val_accuracy"),
        "test": last.get("test_accuracy"),
        "seconds": sum(r.get("seconds", 0.0) for r in rows),
        "rows": rows,
    }


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdirs", nargs="+", type=Path)
    parser.add_argument("--curves", action="store_true", help="print val/test after every epoch")
    args = parser.parse_args()
    runs = []
    for workdir in args.workdirs:
        try:
            runs.append(summarise(workdir))
        except (OSError, ValueError, KeyError) as e:
            sys.exit(f"error: {workdir} is not a training run ({e})")
    header("training runs (from their workdirs)")
    print(f"  {'run':<10} {'epochs':>6} {'final val':>9} {'final test':>10} {'wall s':>7}  "
          f"changes from today's defaults")
    for r in runs:
        print(f"  {r['run']:<10} {r['epochs']:>6} {_pct(r['val']):>9} {_pct(r['test']):>10} "
              f"{r['seconds']:>7.0f}  {r['changes']}")
    if args.curves:
        for r in runs:
            print(f"\n  {r['run']}: epoch val test")
            for row in r["rows"]:
                print(f"    {int(row['epoch']):>3} {_pct(row.get('val_accuracy')):>7} "
                      f"{_pct(row.get('test_accuracy')):>7}")


if __name__ == "__main__":
    main()
