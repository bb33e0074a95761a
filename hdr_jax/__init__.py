"""hdr-jax: handwritten digit recognition in JAX, from multi-device training to serving."""

__version__ = "0.1.0"
