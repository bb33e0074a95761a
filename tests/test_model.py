import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hdr_jax.config import ModelConfig
from hdr_jax.model import (
    count_params,
    create_model,
    flops_per_image,
    per_example_dropout,
)


def test_default_model_shape_params_and_flops():
    model = create_model(ModelConfig(), seed=0)
    model.eval()
    logits = model(jnp.zeros((3, 28, 28, 1)))
    assert logits.shape == (3, 10)
    assert count_params(model) == 543_722
    assert flops_per_image(ModelConfig()) == 27_303_936


def test_lrn_option_and_width_knob():
    config = ModelConfig(conv_features=(8, 8, 8, 8, 8), dense_features=16, norm="lrn")
    model = create_model(config)
    assert model.norms is None
    assert model(jnp.ones((2, 28, 28, 1))).shape == (2, 10)
    with pytest.raises(ValueError, match="five conv"):
        create_model(ModelConfig(conv_features=(8, 8)))


def test_same_seed_same_weights_other_seed_differs():
    a = nnx.state(create_model(ModelConfig(), seed=3), nnx.Param)
    b = nnx.state(create_model(ModelConfig(), seed=3), nnx.Param)
    c = nnx.state(create_model(ModelConfig(), seed=4), nnx.Param)
    leaves = lambda s: jax.tree.leaves(s)
    assert all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b), strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(c), strict=True))


def test_dropout_mask_depends_only_on_each_examples_key():
    x = jnp.ones((6, 50))
    keys = jax.random.split(jax.random.key(1), 6)
    whole = per_example_dropout(x, keys, 0.5)
    halves = jnp.concatenate([per_example_dropout(x[:3], keys[:3], 0.5),
                              per_example_dropout(x[3:], keys[3:], 0.5)])
    np.testing.assert_array_equal(whole, halves)
    assert set(np.unique(whole).tolist()) == {0.0, 2.0}
    np.testing.assert_array_equal(per_example_dropout(x, None, 0.5), x)


def test_eval_mode_is_deterministic_and_train_mode_updates_batch_stats():
    model = create_model(ModelConfig())
    x = jax.random.uniform(jax.random.key(0), (8, 28, 28, 1))
    model.eval()
    np.testing.assert_array_equal(model(x), model(x))
    before = np.asarray(model.norms[0].mean[...])
    model.train()
    model(x, jax.random.split(jax.random.key(2), 8))
    assert not np.array_equal(before, np.asarray(model.norms[0].mean[...]))


def test_bfloat16_compute_keeps_float32_parameters_and_logits_near_float32():
    images = jax.random.uniform(jax.random.key(0), (16, 28, 28, 1))
    f32 = create_model(ModelConfig(), seed=0)
    bf16 = create_model(ModelConfig(compute_dtype="bfloat16"), seed=0)
    params = lambda m: jax.tree.leaves(nnx.state(m, nnx.Param))
    assert {p.dtype for p in params(bf16)} == {jnp.dtype(jnp.float32)}
    assert all(np.array_equal(a, b) for a, b in zip(params(f32), params(bf16), strict=True))
    f32.eval()
    bf16.eval()
    exact, rounded = np.asarray(f32(images)), np.asarray(bf16(images))
    assert rounded.dtype == np.float32
    # bfloat16 keeps 8 bits of mantissa: close to the float32 logits, not equal to them.
    assert not np.array_equal(exact, rounded)
    np.testing.assert_allclose(rounded, exact, atol=0.05 * np.abs(exact).max())
