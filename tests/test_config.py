"""The config object, its presets and the validation of every flag."""

import dataclasses

import pytest

from hdr_jax.config import (
    PRESETS,
    AugmentConfig,
    ConfigError,
    ModelConfig,
    TrainConfig,
    preset,
)
from tests.conftest import run_cli, synthetic_mnist, write_idx_dataset


def test_config_round_trips_through_a_dict():
    config = dataclasses.replace(preset("fast"), model=ModelConfig(conv_features=(8,) * 5))
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_presets_are_valid_and_fast_uses_large_batches():
    for name in PRESETS:
        preset(name).validate()
    assert preset("default") == TrainConfig()
    assert preset("fast").batch_size == 1024
    with pytest.raises(ConfigError, match="unknown preset 'slow'"):
        preset("slow")


@pytest.mark.parametrize("field, value, flag", [
    ("epochs", 0, "--epochs"), ("batch_size", -1, "--batch-size"),
    ("learning_rate", 0.0, "--learning-rate"), ("learning_rate", float("nan"), "--learning-rate"),
    ("weight_decay", -1.0, "--weight-decay"), ("label_smoothing", 1.0, "--label-smoothing"),
    ("validation_size", -5, "--validation-size"), ("train_limit", 0, "--train-limit"),
    ("line_spans", -1, "--line-spans"), ("span_parts", True, "--span-parts"),
    ("eval_batch_size", 0, "--eval-batch-size"), ("max_steps", 0, "--max-steps"),
    ("checkpoint_every_steps", -1, "--checkpoint-every-steps"),
    ("keep_checkpoints", 0, "--keep-checkpoints"), ("log_every_steps", 0, "--log-every-steps"),
    ("warmup_epochs", -1.0, "--warmup-epochs")])
def test_each_out_of_range_field_names_its_flag(field, value, flag):
    with pytest.raises(ConfigError, match=f"^{flag} must be"):
        dataclasses.replace(TrainConfig(), **{field: value}).validate()


@pytest.mark.parametrize("args, message", [
    (["--log-every-steps", "0"], "--log-every-steps must be at least 1"),
    (["--checkpoint-every-steps", "-3"], "--checkpoint-every-steps must be 0 (auto) or more"),
    (["--epochs", "-2"], "--epochs must be at least 1"),
    (["--learning-rate", "-1"], "--learning-rate must be a positive number"),
    (["--width", "0.001"], "--width must be large enough"),
    (["--cpu-devices", "0"], "--cpu-devices must be at least 1"),
    (["--span-parts"], "--span-parts must be used with --line-spans")])
def test_cli_refuses_bad_flags_in_one_line_before_writing_anything(tmp_path, args, message):
    data_dir = write_idx_dataset(tmp_path / "d", synthetic_mnist())
    workdir = tmp_path / "w"
    proc = run_cli("--data-dir", str(data_dir), "--workdir", str(workdir), *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {message}")
    assert not workdir.exists()


def test_a_model_has_ten_classes_or_eleven_with_not_one_digit():
    for classes in (10, 11):
        TrainConfig(model=ModelConfig(num_classes=classes)).validate()
    for classes in (2, 12):
        with pytest.raises(ConfigError, match="^--num-classes must be 10 or 11"):
            TrainConfig(model=ModelConfig(num_classes=classes)).validate()


def test_negative_stroke_gaps_name_their_flag():
    config = TrainConfig(augment=AugmentConfig(stroke_gaps=-1))
    with pytest.raises(ConfigError, match="^--stroke-gaps must be 0 or more"):
        config.validate()
