"""The one configuration object of a training run. Flags override its fields."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal


class ConfigError(Exception):
    """A setting out of its range; one line naming the flag, for the command line."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shape of the AlexNet-style network (see `model.AlexNet`)."""

    conv_features: tuple[int, ...] = (32, 64, 96, 96, 64)
    dense_features: int = 256
    dropout_rate: float = 0.4
    norm: Literal["batch", "lrn"] = "batch"
    # 10 digits; 11 adds "not one digit" (two digits touching, from `--line-spans`) as a
    # class of its own, where 10 learns it as doubt (a uniform target): `steps.class_targets`.
    num_classes: int = 10
    # Arithmetic of the layers; parameters, optimiser state and the loss stay float32.
    # "bfloat16" is an accelerator option (BENCHMARKS.md); export serves in float32.
    compute_dtype: Literal["float32", "bfloat16"] = "float32"


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Random affine (and optional elastic) distortion applied on device while training."""

    enabled: bool = True
    max_rotation_deg: float = 12.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    max_shift_px: float = 2.5
    max_shear_deg: float = 8.0
    elastic_alpha: float = 0.0  # 0 turns elastic distortion off.
    elastic_sigma: float = 4.0
    # Up to this many short gaps erased from each example's strokes (a pen that skips), each
    # drawn with probability 1/2, a disc of `gap_radius` pixels (about a stroke). 0: off.
    stroke_gaps: int = 0
    gap_radius: float = 1.5


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; `train.py` flags map onto these fields."""

    data_dir: str | None = None  # Folder of IDX files; None means TFDS `mnist`.
    workdir: str = "workdir"
    epochs: int = 20  # Chosen on validation: 20 beat 15 (99.44% vs 99.38%); see BENCHMARKS.md.
    max_steps: int | None = None
    batch_size: int = 128  # Global batch, across every device of every process.
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.0
    strategy: Literal["mesh", "pmap"] = "mesh"
    seed: int = 0
    validation_size: int = 5000  # Images held out of the training set for model selection.
    train_limit: int | None = None  # Use only the first N training images (quick runs).
    # Examples cut from lines of the training digits the way the number reader cuts them
    # (`spans.py`): the digit a span holds, or "no digit" where it holds two. 0: MNIST alone.
    line_spans: int = 0
    # Among them, parts of one digit as "no digit" too (a 6 cut into "(" and "0").
    span_parts: bool = False
    # Span examples, as `line_spans` but of lines photographed and found again by the reader
    # (`spans.photograph`): faint strokes broken by the noise floor, as real uploads show the
    # model. 0: none.
    photo_spans: int = 0
    # An inference checkpoint whose weights the run starts from (fine-tuning), with the same
    # model shape; None: fresh weights from `seed`.
    init_from: str | None = None
    eval_batch_size: int = 1000
    # Mid-epoch checkpoints, besides one at every epoch's end. 0 = auto: every 200 steps on
    # CPUs, none on accelerators, where saves that often halve the loop's throughput
    # (`parallel.checkpoint_every_steps`).
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 3
    log_every_steps: int = 20  # Progress-bar refresh (metrics are read every dispatch).
    # Steps compiled into one dispatch (`lax.scan`); a chunk ends early at an epoch's end.
    # 0 = auto: 20 on accelerators, where it makes the loop 3.3x faster than one step per
    # dispatch (H200); 1 on CPUs, where XLA runs a loop body ~3x slower than the same step on
    # its own (BENCHMARKS.md, "loop efficiency" and "Accelerator run").
    steps_per_dispatch: int = 0
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)

    def validate(self) -> TrainConfig:
        """Raises ConfigError naming the first flag out of range; returns self."""
        checks = [
            ("epochs", self.epochs >= 1, "at least 1"),
            ("max-steps", self.max_steps is None or self.max_steps >= 1, "at least 1"),
            ("batch-size", self.batch_size >= 1, "at least 1"),
            ("learning-rate", math.isfinite(self.learning_rate) and self.learning_rate > 0,
             "a positive number"),
            ("weight-decay", math.isfinite(self.weight_decay) and self.weight_decay >= 0,
             "0 or more"),
            ("warmup-epochs", math.isfinite(self.warmup_epochs) and self.warmup_epochs >= 0,
             "0 or more"),
            ("label-smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("validation-size", self.validation_size >= 0, "0 or more"),
            ("train-limit", self.train_limit is None or self.train_limit >= 1, "at least 1"),
            ("line-spans", self.line_spans >= 0, "0 or more"),
            ("span-parts", not self.span_parts or self.line_spans > 0,
             "used with --line-spans"),
            ("photo-spans", self.photo_spans >= 0, "0 or more"),
            ("eval-batch-size", self.eval_batch_size >= 1, "at least 1"),
            ("checkpoint-every-steps", self.checkpoint_every_steps >= 0, "0 (auto) or more"),
            ("keep-checkpoints", self.keep_checkpoints >= 1, "at least 1"),
            ("log-every-steps", self.log_every_steps >= 1, "at least 1"),
            ("steps-per-dispatch", self.steps_per_dispatch >= 0, "0 (auto) or more"),
            ("dropout", 0 <= self.model.dropout_rate < 1, "in [0, 1)"),
            ("num-classes", self.model.num_classes in (10, 11), "10 or 11"),
            ("compute-dtype", self.model.compute_dtype in ("float32", "bfloat16"),
             "float32 or bfloat16"),
            ("width", min(self.model.conv_features) >= 1 and self.model.dense_features >= 1,
             "large enough to leave every layer at least one unit"),
            ("elastic-alpha", self.augment.elastic_alpha >= 0, "0 or more"),
            ("stroke-gaps", self.augment.stroke_gaps >= 0, "0 or more"),
        ]
        for flag, ok, wanted in checks:
            if not ok:
                raise ConfigError(f"--{flag} must be {wanted}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        model = ModelConfig(**_tuples(d.pop("model", {})))
        augment = AugmentConfig(**_tuples(d.pop("augment", {})))
        return cls(model=model, augment=augment, **d)


def _tuples(d: dict) -> dict:
    # JSON turns tuples into lists; frozen dataclasses want them hashable again.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


# Named recipes (`train.py --preset NAME`); explicit flags override a preset's fields.
PRESETS: dict[str, dict] = {
    # The accuracy recipe: the dataclass defaults (chosen on validation; BENCHMARKS.md).
    "default": {},
    # Time to 99.5% on an accelerator: large batches keep a GPU busy (BENCHMARKS.md, "scaling
    # on paper"); a longer warm-up keeps the 8x larger learning rate stable. 18 epochs: of the
    # variations that train within 3 s on an H200, the best on validation (BENCHMARKS.md,
    # "Accelerator run").
    "fast": {"batch_size": 1024, "learning_rate": 8e-3, "warmup_epochs": 1.0, "epochs": 18,
             "eval_batch_size": 5000, "steps_per_dispatch": 29},
}


def preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return TrainConfig(**PRESETS[name])
