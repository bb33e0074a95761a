"""Orbax checkpoints: training state in a workdir, and the small inference checkpoint we ship.

Every checkpoint carries a fingerprint (SHA-256 of every array's bytes) next to the arrays; a
restore recomputes it, so a checkpoint damaged on disk is reported instead of loaded. Orbax writes
each step to a temporary folder and renames it when complete, so a run killed mid-save leaves
no partial step behind for us to find.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np

from hdr_jax.parallel import is_primary, to_host

log = logging.getLogger(__name__)

SELECTION_METRIC = "selection_accuracy"


class CheckpointError(Exception):
    """A checkpoint that is missing, incomplete or corrupt; the message says which and where."""


def _orbax():
    # Imported on first use rather than with this module: it takes ~0.3 s, which a serving
    # cold start spends while XLA compiles the model (see inference.Predictor.from_checkpoint).
    import orbax.checkpoint as ocp

    return ocp


def fingerprint(tree: Any) -> str:
    """SHA-256 over every leaf's path, dtype, shape and bytes. Independent of device layout and
    of whether a container key reads back as 0 or '0' (orbax stores keys as strings)."""
    h = hashlib.sha256()
    leaves = sorted((_path_str(path), leaf)
                    for path, leaf in jax.tree_util.tree_leaves_with_path(tree))
    for path, leaf in leaves:
        host = np.ascontiguousarray(to_host(leaf))
        h.update(f"{path}:{host.dtype.str}:{host.shape}".encode())
        h.update(host.tobytes())
    return h.hexdigest()


def _path_str(path: tuple) -> str:
    parts = (getattr(k, "key", getattr(k, "idx", getattr(k, "name", k))) for k in path)
    return "/".join(str(p) for p in parts)


def _quiet_abandoned_reads() -> None:
    """Drops one report that only a failed restore makes. When one read of a damaged
    checkpoint fails, orbax closes its event loop while tensorstore still finishes the reads
    it had started; their callbacks then raise "Event loop is closed" in tensorstore's threads,
    which Python prints as a traceback (about one failed CLI run in four under load). Those
    reads' results are unwanted, and the CLI has already said what failed in one line. Every
    other unraisable exception still goes to the hook that was there before."""
    previous = sys.unraisablehook
    if getattr(previous, "drops_abandoned_reads", False):
        return

    def hook(unraisable: Any) -> None:
        err = unraisable.exc_value
        if isinstance(err, RuntimeError) and str(err) == "Event loop is closed":
            return
        previous(unraisable)

    hook.drops_abandoned_reads = True
    sys.unraisablehook = hook


def _restore_error(where: Path, err: Exception) -> CheckpointError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return CheckpointError(f"checkpoint {where} is corrupt or incomplete ({type(err).__name__}: "
                           f"{first[:300]}); delete it to resume from an earlier step")


class TrainCheckpoints:
    """The training checkpoints of one workdir: the last `keep`, plus the best by selection
    accuracy (validation accuracy when a validation split exists, else test accuracy)."""

    def __init__(self, directory: str | Path, keep: int = 3, async_save: bool = True):
        from orbax.checkpoint.checkpoint_managers import preservation_policy as preservation

        self._ocp = ocp = _orbax()
        self.directory = Path(directory).absolute()
        policy = preservation.AnyPreservationPolicy([
            preservation.LatestN(n=keep),
            preservation.BestN(get_metric_fn=lambda m: m[SELECTION_METRIC], n=1,
                               keep_checkpoints_without_metrics=False),
        ])
        options = ocp.CheckpointManagerOptions(
            preservation_policy=policy,
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        return self._manager.best_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, step: int, state: Any, meta: dict, metrics: dict | None = None) -> None:
        meta = {**meta, "fingerprint": fingerprint(state)}
        ocp = self._ocp
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), metrics=metrics)

    def restore(self, step: int, target: Any) -> tuple[Any, dict]:
        """Restores into the structure, shapes and shardings of `target` (abstract is fine)."""
        where = self.directory / str(step)
        ocp = self._ocp
        _quiet_abandoned_reads()
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
        except Exception as e:  # orbax/tensorstore raise many types for damaged files
            raise _restore_error(where, e) from None
        meta = restored["meta"] or {}
        if meta.get("fingerprint") != fingerprint(restored["state"]):
            raise CheckpointError(f"checkpoint {where} is corrupt: its arrays do not match the "
                                  "fingerprint saved with them; delete it to resume from an "
                                  "earlier step")
        return restored["state"], meta

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()


# --- The shipped inference checkpoint: parameters and batch statistics only. ---

INFERENCE_ITEMS = ("params", "batch_stats")


def save_inference(directory: str | Path, variables: dict, info: dict) -> None:
    """Writes `variables` ({'params', 'batch_stats'}) plus `info.json` (the model config and
    whatever describes the run) to `directory`, replacing it atomically."""
    directory = Path(directory).absolute()
    info = {**info, "fingerprint": fingerprint(variables)}
    host = jax.tree.map(to_host, variables)
    with _orbax().StandardCheckpointer() as ckptr:
        ckptr.save(directory / "variables", host, force=True)
        ckptr.wait_until_finished()
    if is_primary():
        tmp = directory / "info.json.tmp"
        tmp.write_text(json.dumps(info, indent=2, sort_keys=True))
        tmp.replace(directory / "info.json")


def read_info(directory: str | Path) -> dict:
    """The `info.json` of an inference checkpoint (model config, metrics, fingerprint)."""
    directory = Path(directory).absolute()
    info_path = directory / "info.json"
    try:
        return json.loads(info_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{directory} is not an hdr-jax inference checkpoint "
                              "(no info.json)") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{info_path} is unreadable: {e}") from None


def load_inference(directory: str | Path) -> tuple[dict, dict]:
    """Reads a checkpoint written by `save_inference`: (variables as numpy, info)."""
    directory = Path(directory).absolute()
    info = read_info(directory)
    _quiet_abandoned_reads()
    try:
        with _orbax().StandardCheckpointer() as ckptr:
            meta = ckptr.metadata(directory / "variables")
            tree = getattr(meta, "item_metadata", meta)
            target = jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), _plain(tree))
            variables = ckptr.restore(directory / "variables", target)
    except Exception as e:
        raise _restore_error(directory, e) from None
    if info.get("fingerprint") != fingerprint(variables):
        raise CheckpointError(f"checkpoint {directory} is corrupt: its arrays do not match the "
                              "fingerprint in info.json")
    return variables, info


def _plain(tree: Any) -> Any:
    # Orbax metadata trees may be custom mappings; turn them into plain dicts for tree.map.
    if hasattr(tree, "items"):
        return {k: _plain(v) for k, v in tree.items()}
    return tree
