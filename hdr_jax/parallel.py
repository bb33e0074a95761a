"""Data parallelism over every device of every process: `mesh` (jax.jit over a 1-D device mesh,
the default) or `pmap` (jax.pmap, for users who ask for it by name).

Both strategies keep the dataset resident on the devices and pick each global batch on device
from an epoch permutation, so the host does nothing per step but dispatch. Each device gathers
only its own slice of the global batch (so each process feeds only its share).

A step function has the signature
    step_fn(state, images, labels, positions, axis_name) -> (state, metrics)
where `positions` are the examples' indices within the global batch (they seed per-example
randomness, which is what makes every strategy and device count compute the same numbers) and
`axis_name` is the pmap axis to average over, or None under jit. `compile_train` runs a chunk
of such steps in one dispatch (`lax.scan`), so the host does nothing per step at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"


class ParallelError(ValueError):
    """A configuration that cannot be split across the devices (one line, for the CLI)."""


def check_batch(batch_size: int, num_devices: int, what: str = "global batch") -> None:
    if batch_size <= 0 or batch_size % num_devices:
        raise ParallelError(f"{what} {batch_size} does not divide across {num_devices} devices; "
                            f"use a multiple of {num_devices}")


@dataclasses.dataclass
class MeshStrategy:
    """jax.jit over a 1-D mesh of all devices: batch sharded on `data`, everything else
    replicated. BatchNorm sees the global batch because XLA reduces across the mesh itself."""

    devices: list | None = None  # Default: every device of every process.
    name = "mesh"
    bn_axis_name = None

    def __post_init__(self):
        self.devices = devices = self.devices or jax.devices()
        self.mesh = jax.make_mesh((len(devices),), (AXIS,), devices=devices,
                                  axis_types=(jax.sharding.AxisType.Auto,))
        self.replicated = NamedSharding(self.mesh, P())
        self.sharded = NamedSharding(self.mesh, P(AXIS))
        self.num_devices = len(devices)
        self._permutation = jax.jit(jax.random.permutation, static_argnums=1,
                                    out_shardings=self.replicated)

    def replicate(self, tree: Any) -> Any:
        """Host (or device) tree -> global arrays replicated on every device of every process."""
        def put(x):
            x = np.asarray(x) if not isinstance(x, jax.Array) else x
            if isinstance(x, jax.Array) and not x.is_fully_addressable:
                return jax.device_put(x, self.replicated)
            host = np.asarray(x)
            return jax.make_array_from_callback(host.shape, self.replicated, lambda i: host[i])
        return jax.tree.map(put, tree)

    def checkpointable(self, state: Any) -> Any:
        return state  # Global replicated arrays: orbax saves them as they are.

    def restore_target(self, state: Any) -> Any:
        return jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=self.replicated), state)

    def from_checkpoint(self, state: Any) -> Any:
        return state

    def compile_train(self, step_fn: Callable, batch_size: int, steps_per_epoch: int) -> Callable:
        """fn(state, images, labels, perm, length) -> (state, metrics stacked over `length`
        steps): `length` steps of one epoch in one dispatch (one compile per length)."""
        def one_step(state, images, labels, perm):
            start = (state.step % steps_per_epoch) * batch_size
            idx = jax.lax.dynamic_slice_in_dim(perm, start, batch_size)
            # Sharding the indices first makes each device gather only its own examples.
            idx = jax.lax.with_sharding_constraint(idx, self.sharded)
            positions = jax.lax.with_sharding_constraint(jnp.arange(batch_size), self.sharded)
            return step_fn(state, images[idx], labels[idx], positions, None)

        def chunk(state, images, labels, perm, length):
            if length == 1:  # XLA:CPU runs a loop body ~3x slower than the same step alone.
                state, metrics = one_step(state, images, labels, perm)
                return state, jax.tree.map(lambda m: m[None], metrics)
            return jax.lax.scan(lambda s, _: one_step(s, images, labels, perm), state,
                                length=length)

        # The state is not donated: a state kept for a checkpoint stays valid while later
        # chunks run (a few MB), so the device never waits for a save.
        return jax.jit(chunk, static_argnums=4, out_shardings=(self.replicated, self.replicated))

    def compile_eval(self, eval_fn: Callable, batch_size: int) -> Callable:
        def fn(variables, images, labels, batch_index):
            idx = batch_index * batch_size + jnp.arange(batch_size)
            idx = jax.lax.with_sharding_constraint(idx, self.sharded)
            mask = idx < labels.shape[0]
            idx = jnp.minimum(idx, labels.shape[0] - 1)
            return eval_fn(variables, images[idx], labels[idx], mask, None)

        return jax.jit(fn, out_shardings=self.replicated)

    def permutation(self, key: jax.Array, n: int) -> jax.Array:
        return self._permutation(key, n)

    def fetch(self, tree: Any) -> Any:
        """Device tree of replicated values -> host numpy."""
        return jax.tree.map(to_host, tree)


@dataclasses.dataclass
class PmapStrategy:
    """jax.pmap over the local devices (global axis across processes). pmap is in maintenance
    mode since JAX 0.8; `mesh` computes the same numbers and is what new code should use."""

    devices: list | None = None  # Default: this process's devices (all processes take part).
    name = "pmap"
    bn_axis_name = AXIS

    def __post_init__(self):
        self.num_devices = len(self.devices) if self.devices else jax.device_count()
        # pmap given `devices` maps over those alone; given none, over every process's devices.
        self._pmap_devices = self.devices
        self.devices = self.devices or jax.local_devices()
        self._broadcast = jax.pmap(lambda x: x, devices=self._pmap_devices)
        # Each device's slot in the global batch, given explicitly so that the batch layout is
        # tied to (process, local device) and not to how pmap happens to number devices.
        n_local = len(self.devices)
        first = jax.process_index() * n_local
        self._device_index = self._broadcast(np.arange(first, first + n_local, dtype=np.int32))

    def replicate(self, tree: Any) -> Any:
        n = len(self.devices)
        return jax.tree.map(
            lambda x: self._broadcast(np.broadcast_to(np.asarray(x), (n, *np.shape(x)))), tree)

    def checkpointable(self, state: Any) -> Any:
        # Replica 0 as host numpy: the same tree a mesh run saves, minus the device axis.
        return jax.tree.map(lambda x: np.asarray(x[0]), state)

    def restore_target(self, state: Any) -> Any:
        return jax.tree.map(lambda x: np.zeros(np.shape(x), x.dtype), state)

    def from_checkpoint(self, state: Any) -> Any:
        return self.replicate(state)

    def compile_train(self, step_fn: Callable, batch_size: int, steps_per_epoch: int) -> Callable:
        local = batch_size // self.num_devices

        def one_step(state, images, labels, perm, device):
            start = (state.step % steps_per_epoch) * batch_size + device * local
            idx = jax.lax.dynamic_slice_in_dim(perm, start, local)
            positions = device * local + jnp.arange(local)
            return step_fn(state, images[idx], labels[idx], positions, AXIS)

        def chunk(state, images, labels, perm, device, length):
            if length == 1:  # As under MeshStrategy: no loop around a single step.
                state, metrics = one_step(state, images, labels, perm, device)
                return state, jax.tree.map(lambda m: m[None], metrics)
            return jax.lax.scan(lambda s, _: one_step(s, images, labels, perm, device), state,
                                length=length)

        pmapped = jax.pmap(chunk, axis_name=AXIS, static_broadcasted_argnums=5,
                           devices=self._pmap_devices)  # Not donated, as under MeshStrategy.
        return lambda state, images, labels, perm, length: pmapped(
            state, images, labels, perm, self._device_index, length)

    def compile_eval(self, eval_fn: Callable, batch_size: int) -> Callable:
        local = batch_size // self.num_devices

        def fn(variables, images, labels, batch_index, device):
            idx = batch_index * batch_size + device * local + jnp.arange(local)
            mask = idx < labels.shape[0]
            idx = jnp.minimum(idx, labels.shape[0] - 1)
            return eval_fn(variables, images[idx], labels[idx], mask, AXIS)

        pmapped = jax.pmap(fn, axis_name=AXIS, devices=self._pmap_devices,
                           in_axes=(0, 0, 0, None, 0))
        return lambda state, images, labels, i: pmapped(state, images, labels, i,
                                                        self._device_index)

    def permutation(self, key: jax.Array, n: int) -> jax.Array:
        return self.replicate(np.asarray(jax.random.permutation(key, n)))

    def fetch(self, tree: Any) -> Any:
        # The whole (tiny) array, then replica 0 on the host: the copy `prefetch` started.
        return jax.tree.map(lambda x: np.asarray(x)[0], tree)


Strategy = MeshStrategy | PmapStrategy


def make_strategy(name: str) -> Strategy:
    if name == "mesh":
        return MeshStrategy()
    if name == "pmap":
        return PmapStrategy()
    raise ParallelError(f"unknown strategy {name!r}; choose 'mesh' or 'pmap'")


def is_primary() -> bool:
    """The process that writes run files and prints (process 0); every process computes."""
    return jax.process_index() == 0


def steps_per_dispatch(requested: int, strategy: Strategy) -> int:
    """`requested`, or for 0 (auto) 1 on CPU devices and 20 on accelerators: XLA:CPU runs a
    `lax.scan` body ~3x slower than the same step compiled alone, while on accelerators one
    dispatch of many steps keeps the host out of the device's way."""
    if requested:
        return requested
    return 1 if on_cpu(strategy) else 20


# Steps an accelerator keeps queued while the host reads older metrics and saves
# checkpoints: enough that neither leaves the device idle.
STEPS_IN_FLIGHT = 160


def chunks_in_flight(chunk: int, strategy: Strategy) -> int:
    """Chunks the loop leaves queued before reading the oldest: one on CPU devices (XLA:CPU's
    emulated devices can deadlock in their collectives with many steps queued), else enough
    for `STEPS_IN_FLIGHT` steps."""
    return 1 if on_cpu(strategy) else max(1, -(-STEPS_IN_FLIGHT // chunk))


# Steps between mid-epoch checkpoints on CPU devices when the config says 0 (auto): under half
# an epoch of the default recipe, a minute or so of training on a 2-core CPU.
CPU_CHECKPOINT_EVERY_STEPS = 200


def checkpoint_every_steps(requested: int, strategy: Strategy, steps_per_epoch: int) -> int:
    """`requested`, or for 0 (auto) 200 steps on CPU devices and one epoch on accelerators
    (checkpoints at epoch ends alone): there an MNIST epoch takes about a second, and saving
    every 200 steps halved the loop's throughput on an H100 (BENCHMARKS.md, session 10)."""
    if requested:
        return requested
    return CPU_CHECKPOINT_EVERY_STEPS if on_cpu(strategy) else steps_per_epoch


def on_cpu(strategy: Strategy) -> bool:
    """Whether the strategy's devices are (emulated) CPU devices rather than accelerators."""
    return strategy.devices[0].platform == "cpu"


def prefetch(tree: Any) -> None:
    """Starts copying a tree's arrays to the host as soon as the device has computed them, so
    reading them later waits for nothing queued after them."""
    for x in jax.tree.leaves(tree):
        if isinstance(x, jax.Array) and x.is_fully_addressable:
            x.copy_to_host_async()


def cpu_device_count(cores: int, batch_size: int) -> int:
    """How many CPU devices to emulate: the largest count <= `cores` that divides the global
    batch (one device per core runs the batch's shards side by side; see BENCHMARKS.md)."""
    return max(n for n in range(1, max(cores, 1) + 1) if batch_size % n == 0)


def use_cpu_devices(count: int) -> None:
    """Emulates `count` CPU devices; must run before JAX starts its backends."""
    jax.config.update("jax_num_cpu_devices", count)


def to_host(x: Any) -> np.ndarray:
    """A device array as host numpy; a replicated array spanning processes reads its local
    copy (every process holds the whole value)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return np.asarray(x.addressable_shards[0].data)
    return np.asarray(x)


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Joins a multi-process run. Explicit values (flags or HDR_COORDINATOR_ADDRESS,
    HDR_NUM_PROCESSES, HDR_PROCESS_ID) win; otherwise on a TPU pod, SLURM or Kubernetes JAX
    detects the cluster itself. A single process with nothing set does nothing."""
    import os

    coordinator_address = coordinator_address or os.environ.get("HDR_COORDINATOR_ADDRESS")
    if num_processes is None and os.environ.get("HDR_NUM_PROCESSES"):
        num_processes = int(os.environ["HDR_NUM_PROCESSES"])
    if process_id is None and os.environ.get("HDR_PROCESS_ID"):
        process_id = int(os.environ["HDR_PROCESS_ID"])
    in_cluster = any(v in os.environ for v in ("SLURM_JOB_ID", "TPU_WORKER_HOSTNAMES",
                                               "JOBSET_NAME", "OMPI_COMM_WORLD_SIZE"))
    if coordinator_address is None and num_processes is None and not in_cluster:
        return
    if num_processes is not None and num_processes <= 1 and coordinator_address is None:
        return
    # CPU collectives across processes (tests, CPU clusters) go through gloo; accelerators
    # bring their own and ignore this setting. Must be set before the backends start.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
