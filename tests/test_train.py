import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hdr_jax import parallel
from hdr_jax.config import AugmentConfig, ModelConfig, TrainConfig
from hdr_jax.evaluate import precise_batch_stats
from hdr_jax.model import MNIST_MEAN, MNIST_STD, create_model
from hdr_jax.steps import to_model_input
from hdr_jax.train import TIMINGS, ChunkPlan, RunRecorder, TrainingDiverged, train_and_evaluate
from tests.conftest import cpu_devices, synthetic_mnist

SMALL = ModelConfig(conv_features=(8, 16, 16, 16, 16), dense_features=32)


def small_config(workdir, **kw) -> TrainConfig:
    base = dict(workdir=str(workdir), epochs=1, batch_size=32, learning_rate=3e-3,
                validation_size=0, eval_batch_size=64, checkpoint_every_steps=1000,
                log_every_steps=2, model=SMALL, augment=AugmentConfig(enabled=False))
    base.update(kw)
    return TrainConfig(**base)


def _host_params(result, strategy):
    return jax.tree.leaves(jax.device_get(strategy.checkpointable(result["state"]).params))


def test_single_device_mesh_and_pmap_train_to_the_same_parameters(tmp_path):
    dataset = synthetic_mnist()
    # All randomness on; two steps per dispatch, so the chunked (lax.scan) path is compared.
    config = small_config(tmp_path, max_steps=4, augment=AugmentConfig(), steps_per_dispatch=2)
    strategies = {
        "single": parallel.MeshStrategy(devices=cpu_devices(1)),
        "mesh8": parallel.MeshStrategy(devices=cpu_devices(8)),
        "pmap8": parallel.PmapStrategy(devices=cpu_devices(8)),
    }
    params, accuracy = {}, {}
    for name, strategy in strategies.items():
        cfg = dataclasses.replace(config, workdir=str(tmp_path / name))
        result = train_and_evaluate(cfg, dataset, progress=False, strategy=strategy)
        assert result["step"] == 4
        params[name] = _host_params(result, strategy)
        accuracy[name] = result["test_accuracy"]
    for name in ("mesh8", "pmap8"):
        for a, b in zip(params["single"], params[name], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6, err_msg=name)
    assert accuracy["single"] == accuracy["mesh8"] == accuracy["pmap8"]


def test_global_batch_that_does_not_divide_is_a_clear_error(tmp_path):
    config = small_config(tmp_path, batch_size=30)
    with pytest.raises(parallel.ParallelError, match="30 does not divide across 8 devices"):
        train_and_evaluate(config, synthetic_mnist(), progress=False,
                           strategy=parallel.MeshStrategy(devices=cpu_devices(8)))


def test_evaluation_counts_every_image_once_on_any_device_count(tmp_path):
    dataset = synthetic_mnist(n_train=256, n_test=203)  # 203: not a multiple of anything.
    results = []
    for n in (1, 8):
        config = small_config(tmp_path / str(n), max_steps=2, eval_batch_size=64)
        results.append(train_and_evaluate(
            config, dataset, progress=False,
            strategy=parallel.MeshStrategy(devices=cpu_devices(n))))
    assert results[0]["test_accuracy"] == pytest.approx(results[1]["test_accuracy"])
    # accuracy * 203 must be a whole number of images.
    assert results[1]["test_accuracy"] * 203 == pytest.approx(
        round(results[1]["test_accuracy"] * 203))


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    dataset = synthetic_mnist()
    good = small_config(tmp_path, max_steps=4, checkpoint_every_steps=2)
    train_and_evaluate(good, dataset, progress=False)
    saved = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert saved == ["2", "4"]
    bad = dataclasses.replace(good, learning_rate=float("nan"), epochs=2, max_steps=None)
    with pytest.raises(TrainingDiverged, match="last good checkpoint: step 4"):
        train_and_evaluate(bad, dataset, progress=False)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["2", "4"]


def test_metrics_jsonl_has_one_record_per_epoch(tmp_path):
    config = small_config(tmp_path, epochs=2, validation_size=64)
    result = train_and_evaluate(config, synthetic_mnist(), progress=False)
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "val_accuracy",
                *TIMINGS):
        assert all(np.isfinite(r[key]) for r in records), key
    # The first epoch compiles the step; the second runs what was compiled.
    assert records[0]["compile_seconds"] > 0 and records[1]["compile_seconds"] == 0
    assert records[0]["elapsed_seconds"] < records[1]["elapsed_seconds"]
    # (512 - 64) // 32 = 14 steps per epoch.
    assert records[-1]["step"] == 28 == result["step"]
    assert records[-1]["test_accuracy"] > 0.5  # The toy task is easy.


@pytest.mark.slow
def test_short_real_training_run_learns_mnist(tmp_path, real_mnist):
    config = TrainConfig(workdir=str(tmp_path), epochs=2, batch_size=128, train_limit=4096,
                         validation_size=0, eval_batch_size=1000, seed=0)
    result = train_and_evaluate(config, real_mnist, progress=False,
                                strategy=parallel.MeshStrategy(devices=cpu_devices(1)))
    # 64 steps on 4096 images; a broken model, optimiser or data path stays near 10%.
    assert result["test_accuracy"] >= 0.88


def test_precise_batch_stats_are_the_population_statistics_of_clean_images():
    images = synthetic_mnist(n_train=512).train.images
    model = create_model(SMALL, seed=3)
    before = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    stats = precise_batch_stats(model, images, batch_size=128)  # 4 equal batches

    # The first normalised layer sees the conv of the raw image, whatever the batching: its
    # statistics must be exactly those of all 512 images at once.
    x = (to_model_input(jnp.asarray(images)) - MNIST_MEAN) / MNIST_STD
    first = np.asarray(model.convs[0](x))
    np.testing.assert_allclose(stats["norms"][0]["mean"], first.mean((0, 1, 2)),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats["norms"][0]["var"], first.var((0, 1, 2)),
                               rtol=1e-3, atol=1e-5)
    for layer in stats["norms"].values():  # every layer re-estimated, variances positive
        assert layer["mean"].shape == (layer["var"].shape) and (layer["var"] > 0).all()
    assert not np.allclose(stats["norms"][4]["var"], before["norms"][4]["var"])
    # The model passed in keeps its own statistics and its momentum.
    after = nnx.to_pure_dict(nnx.state(model, nnx.BatchStat))
    jax.tree.map(np.testing.assert_array_equal, before, after)
    assert model.norms[0].momentum == 0.9


def test_chunk_plan_counts_chunks_from_each_epoch_start_and_saves_after_each_multiple():
    plan = ChunkPlan(steps_per_epoch=10, chunk=4, checkpoint_every=5)
    assert list(plan.chunks(0, 10)) == [(0, 4), (4, 8), (8, 10)]
    assert list(plan.chunks(10, 20)) == [(10, 14), (14, 18), (18, 20)]
    assert list(plan.chunks(6, 10)) == [(6, 8), (8, 10)]  # resumed mid-epoch
    assert list(plan.chunks(10, 13)) == [(10, 13)]  # --max-steps ends the run early
    due = [b for a, b in plan.chunks(10, 20) if plan.checkpoint_due(a, b, 20)]
    assert due == [18]  # 15 is crossed inside (14, 18); 20 is the epoch end's own save


def _records_without_timings(workdir) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMINGS}
            for r in RunRecorder(workdir).records()]


def test_chunks_left_in_flight_change_no_record_and_no_checkpoint(tmp_path, monkeypatch):
    # Accelerators leave many chunks queued before reading the oldest; one CPU device (no
    # collectives to deadlock) runs that path here, against one chunk in flight.
    dataset = synthetic_mnist()
    config = small_config(tmp_path, epochs=2, steps_per_dispatch=2, checkpoint_every_steps=3,
                          keep_checkpoints=20)
    saved, params = {}, {}
    for depth in (1, 3):
        monkeypatch.setattr(parallel, "chunks_in_flight", lambda chunk, s, depth=depth: depth)
        workdir = tmp_path / str(depth)
        strategy = parallel.MeshStrategy(devices=cpu_devices(1))
        result = train_and_evaluate(dataclasses.replace(config, workdir=str(workdir)), dataset,
                                    progress=False, strategy=strategy)
        # Each save's step, fingerprint and training-metric sums so far (what a resume reads).
        saved[depth] = sorted(
            (int(p.parent.parent.name), meta["fingerprint"], str(meta.get("epoch_sums")))
            for p in (workdir / "checkpoints").glob("[0-9]*/meta/metadata")
            for meta in [json.loads(p.read_text())])
        params[depth] = _host_params(result, strategy)
    assert _records_without_timings(tmp_path / "1") == _records_without_timings(tmp_path / "3")
    assert saved[1] == saved[3] and len(saved[3]) > 2
    for a, b in zip(params[1], params[3], strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_bad_update_is_never_saved_with_chunks_in_flight(tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "chunks_in_flight", lambda chunk, strategy: 4)
    config = small_config(tmp_path, learning_rate=float("nan"), max_steps=6,
                          checkpoint_every_steps=2, steps_per_dispatch=1)
    with pytest.raises(TrainingDiverged, match=r"at step 1: .*no checkpoint yet"):
        train_and_evaluate(config, synthetic_mnist(), progress=False,
                           strategy=parallel.MeshStrategy(devices=cpu_devices(1)))
    assert not any((tmp_path / "checkpoints").glob("[0-9]*"))


def test_a_step_whose_update_breaks_the_parameters_is_never_saved(tmp_path):
    # With a NaN learning rate the first loss and gradients are finite; only the parameters
    # after the update are not. Checkpointing after every step must not save them.
    config = small_config(tmp_path, learning_rate=float("nan"), max_steps=4,
                          checkpoint_every_steps=1, steps_per_dispatch=1)
    with pytest.raises(TrainingDiverged, match=r"at step 1: .*parameters finite: False.*"
                                               r"no checkpoint yet"):
        train_and_evaluate(config, synthetic_mnist(), progress=False)
    assert not any((tmp_path / "checkpoints").glob("[0-9]*"))


def test_an_epoch_record_written_twice_is_kept_once(tmp_path):
    dataset = synthetic_mnist()
    config = small_config(tmp_path, epochs=2)
    train_and_evaluate(config, dataset, progress=False)
    before = RunRecorder(tmp_path).records()
    # A kill after epoch 2's record and before its checkpoint: the rerun trains epoch 2 again
    # and writes its record again.
    shutil.rmtree(tmp_path / "checkpoints" / "32")  # 2 epochs x 16 steps
    train_and_evaluate(config, dataset, progress=False)
    after = RunRecorder(tmp_path).records()
    strip = lambda records: [{k: v for k, v in r.items() if k not in TIMINGS} for r in records]
    assert [r["epoch"] for r in after] == [1, 2]
    assert strip(after) == strip(before)


def test_the_label_past_the_last_class_means_no_digit_with_a_uniform_target():
    from hdr_jax.steps import class_targets

    targets = np.asarray(class_targets(jnp.array([2, 10]), 10))
    np.testing.assert_array_equal(targets[0], np.eye(10)[2])
    np.testing.assert_allclose(targets[1], np.full(10, 0.1))


def test_an_eleven_class_model_targets_no_digit_as_its_eleventh_class():
    from hdr_jax.steps import class_targets

    targets = np.asarray(class_targets(jnp.array([2, 10]), 11))
    np.testing.assert_array_equal(targets, np.eye(11)[[2, 10]])


def test_the_digit_of_an_eleven_class_model_is_never_its_eleventh_class():
    from hdr_jax.steps import digit_of

    logits = jnp.array([[0.0, 3.0, 1.0, 0, 0, 0, 0, 0, 0, 0, 9.0],
                        [5.0, 0.0, 1.0, 0, 0, 0, 0, 0, 0, 0, -1.0]])
    np.testing.assert_array_equal(digit_of(logits), [1, 0])
    np.testing.assert_array_equal(digit_of(logits[:, :10]), [1, 0])


def test_a_run_started_from_a_checkpoint_holds_its_weights_and_fresh_moments(
        shipped_checkpoint):
    from hdr_jax.checkpoint import fingerprint, read_info
    from hdr_jax.steps import create_train_state, make_optimizer
    from hdr_jax.train import started_from

    config = TrainConfig(model=ModelConfig(num_classes=11), init_from=str(shipped_checkpoint))
    tx = make_optimizer(config, 10)
    state = started_from(shipped_checkpoint, config, tx, create_train_state(config, tx)[1])
    # Every array, bit for bit: the checkpoint's own fingerprint.
    assert fingerprint({"params": nnx.to_pure_dict(state.params),
                        "batch_stats": nnx.to_pure_dict(state.batch_stats)}
                       ) == read_info(shipped_checkpoint)["fingerprint"]
    adam = state.opt_state[0]  # (AdamW's moments start at zero for the new weights.)
    assert int(adam.count) == 0
    assert all(not np.any(m) for m in jax.tree.leaves(adam.mu))


@pytest.mark.slow
def test_fine_tuning_from_the_shipped_checkpoint_starts_where_it_left_off(
        tmp_path, real_mnist, shipped_checkpoint):
    # Two steps at a tiny learning rate: the shipped model's accuracy, where fresh weights
    # after two steps read near chance.
    config = TrainConfig(workdir=str(tmp_path), epochs=1, max_steps=2, batch_size=128,
                         learning_rate=1e-7, train_limit=1024, validation_size=0,
                         eval_batch_size=1000, model=ModelConfig(num_classes=11),
                         init_from=str(shipped_checkpoint))
    result = train_and_evaluate(config, real_mnist, progress=False,
                                strategy=parallel.MeshStrategy(devices=cpu_devices(1)))
    assert result["test_accuracy"] >= 0.99
