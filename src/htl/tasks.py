"""The task spec every model, loss and metric shares: ordered binary chain, then the core."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    """Binary tasks in chain order, then the continuous core task and its loss."""

    chain: tuple[str, ...]
    core: str
    core_loss: str = "mse"
    core_transform: str = "none"  # the MSE core's training scale: none | standardize | log1p
    #: Train statistics of the core (`htl.losses.with_core_statistics`): (mean, std) of the
    #: target for standardize; the offset added to the core head's raw output(s), i.e. the
    #: head's bias starting at the train mean on the training scale (ZILN: P(y > 0) logit, μ,
    #: softplus⁻¹(σ) of the positive amounts); log1p's residual variance on validation, for
    #: the bias-corrected back-transform expm1(ŷ + σ²/2).
    core_moments: tuple[float, float] = (0.0, 1.0)
    core_offset: tuple[float, ...] = ()
    core_residual_variance: float = 0.0

    def __post_init__(self) -> None:
        if not self.chain:
            raise ValueError("a task spec needs at least one binary task before the core (T >= 1)")
        if self.core_loss not in ("mse", "ziln"):
            raise ValueError(f"core_loss is {self.core_loss!r}; expected 'mse' or 'ziln'")
        if self.core_transform not in ("none", "standardize", "log1p"):
            raise ValueError(
                f"core_transform is {self.core_transform!r}; expected none, standardize or log1p"
            )
        if self.core_transform != "none" and self.core_loss != "mse":
            raise ValueError(f"core_transform {self.core_transform} applies to the MSE core only")
        if len({*self.chain, self.core}) != len(self.chain) + 1:
            raise ValueError(f"task names must be distinct, got {[*self.chain, self.core]}")

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.chain, self.core)

    @property
    def core_outputs(self) -> int:
        """Width of the core head: 1 for MSE, 3 logits (p, mu, sigma) for ZILN."""
        return 3 if self.core_loss == "ziln" else 1

    @property
    def selection_metric(self) -> str:
        """The validation metric that picks the best epoch, the best trial and the best seed."""
        return f"{self.core}/nrmse"
