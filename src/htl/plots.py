"""The report's figures as PNG: shared-gradient magnitudes (Fig. 5), time per epoch (Fig. 7)
and every metric's mean ± std per model (the bars of Fig. 4)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on pipeline nodes

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def epoch_curves(records: list[dict[str, Any]], prefix: str) -> dict[str, dict[str, np.ndarray]]:
    """{model: {key: per-epoch mean over seeds}} for history keys starting with `prefix`.

    Seeds that stopped early contribute to the epochs they ran.
    """
    out: dict[str, dict[str, list[list[float]]]] = {}
    for record in records:
        for row in record.get("history", []):
            epoch = int(row["epoch"])
            for key, value in row.items():
                if key.startswith(prefix):
                    per_epoch = out.setdefault(record["model"], {}).setdefault(key, [])
                    per_epoch.extend([] for _ in range(epoch - len(per_epoch)))
                    per_epoch[epoch - 1].append(value)
    return {
        model: {k: np.array([np.mean(v) if v else np.nan for v in e]) for k, e in keys.items()}
        for model, keys in out.items()
    }


def plot_grad_norms(records: list[dict[str, Any]], tasks: Sequence[str], path: Path) -> bool:
    """Fig. 5: each task's mean shared-gradient magnitude per epoch, one panel per model that
    logged it; solid after the gradient process, dashed before it where the two differ."""
    curves = epoch_curves(records, "grad_norm/")
    if not curves:
        return False
    fig, axes = plt.subplots(
        1, len(curves), figsize=(4.5 * len(curves), 3.6), squeeze=False, sharey=True
    )
    for ax, (model, keys) in zip(axes[0], curves.items(), strict=True):
        for i, task in enumerate(tasks):
            after = keys.get(f"grad_norm/{task}/after")
            before = keys.get(f"grad_norm/{task}/before")
            if after is None:
                continue
            epochs = np.arange(1, len(after) + 1)
            ax.plot(epochs, after, marker="o", color=f"C{i}", label=task)
            if before is not None and not np.allclose(before, after, equal_nan=True):
                ax.plot(epochs, before, ls="--", color=f"C{i}", alpha=0.6, label=f"{task} (raw)")
        ax.set(title=model, xlabel="epoch", yscale="log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("‖∂L_t/∂θ_s‖, mean over steps")
    fig.suptitle("Shared-gradient magnitude per task (Fig. 5)")
    _save(fig, path)
    return True


def plot_epoch_time(records: list[dict[str, Any]], order: Sequence[str], path: Path) -> bool:
    """Fig. 7: training seconds per epoch per model, mean ± std over every seed's epochs."""
    times: dict[str, list[float]] = {}
    for record in records:
        for row in record.get("history", []):
            if "time/epoch_seconds" in row:
                times.setdefault(record["model"], []).append(row["time/epoch_seconds"])
    models = [m for m in order if m in times]
    if not models:
        return False
    means = [float(np.mean(times[m])) for m in models]
    stds = [float(np.std(times[m])) for m in models]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(models) + 1), 3.6))
    ax.bar(models, means, yerr=stds, color=[_color(m, order) for m in models], capsize=3)
    ax.set(ylabel="seconds per training epoch", title="Time per epoch (Fig. 7)")
    ax.tick_params(axis="x", rotation=45)
    _save(fig, path)
    return True


def plot_metrics(
    summary: dict[str, dict[str, tuple[float, float, int]]],
    metrics: Sequence[str],
    order: Sequence[str],
    path: Path,
) -> bool:
    """Every metric's mean ± std per model, one panel per metric (Fig. 4's bars)."""
    models = [m for m in order if m in summary]
    if not models or not metrics:
        return False
    cols = min(4, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, metrics, strict=False):
        means = [summary[m][key][0] for m in models]
        stds = [np.nan_to_num(summary[m][key][1]) for m in models]
        ax.bar(models, means, yerr=stds, color=[_color(m, order) for m in models], capsize=2)
        finite = [v for v in means if math.isfinite(v)]
        if finite:  # zoom on the differences, as the paper's bars do
            low, high = min(finite), max(finite)
            pad = max(high - low, 1e-3) * 0.6
            ax.set_ylim(low - pad, high + pad)
        ax.set_title(key, fontsize=9)
        ax.tick_params(axis="x", rotation=60, labelsize=7)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    _save(fig, path)
    return True


def _color(model: str, order: Sequence[str]) -> str:
    return f"C{list(order).index(model) % 10}" if model in order else "C7"


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
