"""The one configuration object of a training run. Flags override its fields."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shape of the AlexNet-style network (see `model.AlexNet`)."""

    conv_features: tuple[int, ...] = (32, 64, 96, 96, 64)
    dense_features: int = 256
    dropout_rate: float = 0.4
    norm: Literal["batch", "lrn"] = "batch"
    num_classes: int = 10


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
    eval_batch_size: int = 1000
    checkpoint_every_steps: int = 200
    keep_checkpoints: int = 3
    log_every_steps: int = 20
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)

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
