"""htl: multi-task learning on hybrid targets (binary conversions ending in a core value)."""

__version__ = "0.1.0"
