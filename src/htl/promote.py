"""Champion/challenger promotion: both versions scored through their own pyfunc on the same
test rows, the config's gate decides, a blessing records every number, and only a blessed
version moves `@champion` (the one it replaces keeps `@previous-champion`).

Two promotions at once cannot leave `@champion` on the worse model: after moving the alias a
promotion reads it back, and while another version holds it, it decides again against that
one (the comparison is deterministic, so both promotions agree on the better model).
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from scipy import stats as sps

from htl.artifacts import BLESSING_JSON, BLESSING_MD, FEATURES_FILE, RAW_TEST_FILE, Record
from htl.config import ExperimentConfig, PromoteConfig
from htl.data.features import FeatureEncoder
from htl.errors import ConfigError, DataError
from htl.metrics import evaluate_predictions, higher_is_better
from htl.storage import atomic_directory
from htl.tasks import TaskSpec

log = logging.getLogger(__name__)

CHAMPION, PREVIOUS = "champion", "previous-champion"
MAX_ROUNDS = 5  # re-decisions when another promotion moves @champion meanwhile
SETTLE_S = 2.0  # MLflow has no compare-and-set: wait, then read @champion back


@dataclass(frozen=True)
class Check(Record):
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Blessing(Record):
    """What `htl promote` decided and why: every number, every threshold, the verdict."""

    model: str
    challenger: int
    champion: int | None
    rows: int
    metrics: dict[str, dict[str, float]]  # {"challenger": {...}, "champion": {...}}
    checks: list[Check] = field(default_factory=list)
    blessed: bool = False
    reason: str = ""

    def markdown(self) -> str:
        against = f"v{self.champion}" if self.champion is not None else "no champion"
        verdict = "**blessed**: promoted to @champion" if self.blessed else "**not blessed**"
        lines = [
            f"# Promotion of {self.model} v{self.challenger} against {against}",
            "",
            f"{verdict}. {self.reason}",
            "",
            f"Scored on the same {self.rows:,} test rows through each version's own pyfunc.",
            "",
            "| metric | challenger | champion |",
            "|---|---:|---:|",
        ]
        champion = self.metrics.get("champion", {})
        for key, value in self.metrics["challenger"].items():
            other = f"{champion[key]:.4f}" if key in champion else "—"
            lines.append(f"| {key} | {value:.4f} | {other} |")
        lines += ["", "| check | passed | detail |", "|---|---|---|"]
        lines += [f"| {c.name} | {'yes' if c.passed else 'no'} | {c.detail} |" for c in self.checks]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Scores:
    metrics: dict[str, float]
    squared_errors: np.ndarray  # per test row, on the core: the primary metric's per-row loss


def test_rows(splits_dir: str | Path) -> tuple[pd.DataFrame, TaskSpec]:
    """The run's raw test rows (features and targets) and its task spec."""
    encoder = FeatureEncoder.load(Path(splits_dir) / FEATURES_FILE)
    return pd.read_parquet(Path(splits_dir) / RAW_TEST_FILE), TaskSpec(encoder.chain, encoder.core)


def score(model_uri: str, rows: pd.DataFrame, tasks: TaskSpec) -> Scores:
    """Test metrics of one registered version, through its own pyfunc (its own encoder)."""
    model = mlflow.pyfunc.load_model(model_uri)
    features = rows.drop(columns=list(tasks.names))
    try:
        preds = model.predict(features)
    except MlflowException as exc:  # its input schema is not this data's
        raise DataError(
            f"{model_uri} cannot score this run's test rows ({RAW_TEST_FILE}): "
            f"{str(exc.message).rsplit('Error: ', 1)[-1].strip()} The data's columns changed "
            "since it was registered, so the two cannot be compared on it. Move @champion by "
            "hand (or delete the alias) to promote against another version"
        ) from exc
    targets = {t: rows[t].to_numpy(dtype=np.float64) for t in tasks.names}
    outputs = {t: preds[t].to_numpy(dtype=np.float64) for t in tasks.names}
    errors = (outputs[tasks.core] - targets[tasks.core]) ** 2
    return Scores(evaluate_predictions(targets, outputs, tasks), errors)


def decide(
    gate: PromoteConfig, tasks: TaskSpec, challenger: Scores, champion: Scores | None
) -> tuple[list[Check], bool, str]:
    """The gate: absolute thresholds; against a champion also no regression beyond the
    tolerance and a paired test on the primary metric. Returns (checks, blessed, reason)."""
    checks = []
    for key, bound in gate.thresholds.items():
        if key not in challenger.metrics:
            raise ConfigError(
                f"'promote.thresholds.{key}' names no metric of this run; "
                f"expected one of {sorted(challenger.metrics)}"
            )
        value, up = challenger.metrics[key], bool(higher_is_better(key))
        passed = value >= bound if up else value <= bound
        sign = ">=" if up else "<="
        checks.append(Check(f"threshold {key}", passed, f"{value:.4f} {sign} {bound}"))
    if champion is not None:
        for key, value in challenger.metrics.items():
            up = higher_is_better(key)
            if up is None or not math.isfinite(value) or key not in champion.metrics:
                continue
            gain = value - champion.metrics[key] if up else champion.metrics[key] - value
            checks.append(
                Check(
                    f"no regression {key}",
                    gain >= -gate.tolerance,
                    f"{value:.4f} vs {champion.metrics[key]:.4f} (tolerance {gate.tolerance})",
                )
            )
        checks.append(_paired_check(gate, tasks, challenger, champion))
    failed = [c.name for c in checks if not c.passed]
    if failed:
        return checks, False, f"Failed: {', '.join(failed)}."
    first = " (the first model: thresholds only)" if champion is None else ""
    return checks, True, f"Every check passed{first}."


def _paired_check(
    gate: PromoteConfig, tasks: TaskSpec, challenger: Scores, champion: Scores
) -> Check:
    """One-sided paired t-test on the per-row squared core errors (NRMSE is monotone in their
    mean): d = champion's − challenger's, H1: mean(d) > −margin · champion's mean."""
    d = champion.squared_errors - challenger.squared_errors
    shift = (
        -gate.margin * float(champion.squared_errors.mean()) if gate.mode != "superiority" else 0
    )
    name = f"{gate.mode} {tasks.selection_metric}"
    if np.ptp(d) == 0:  # the same model again (or a constant shift): nothing to test
        passed = bool(d[0] > shift)
        detail = f"every row's squared error differs by {d[0]:.4g}: {'a' if passed else 'no'} gain"
        return Check(name, passed, detail)
    result = sps.ttest_1samp(d, shift, alternative="greater")
    p = float(result.pvalue)
    passed = bool(p <= gate.alpha)
    return Check(
        name,
        passed,
        f"paired t over {len(d):,} rows: t = {float(result.statistic):.3f}, p = {p:.4g} "
        f"(alpha {gate.alpha}{f', margin {gate.margin}' if gate.mode != 'superiority' else ''})",
    )


def promote(
    config: ExperimentConfig, splits_dir: str | Path, out_dir: str | Path, version: int | None
) -> Blessing:
    """Decide on `version` (default: the version behind the register alias), tag it, move the
    aliases if blessed, and write blessing.json + blessing.md to `out_dir`."""
    name = config.register.name
    client = MlflowClient()
    challenger = version if version is not None else _alias(client, name, config.register.alias)
    if challenger is None:
        raise ConfigError(f"registered model '{name}' has no @{config.register.alias} to promote")
    rows, tasks = test_rows(splits_dir)

    @functools.cache
    def scores(v: int) -> Scores:  # each version scored once, however many rounds
        return score(f"models:/{name}/{v}", rows, tasks)

    blessing = None
    for _ in range(MAX_ROUNDS):
        champion = _alias(client, name, CHAMPION)
        if champion == challenger:
            break  # it holds @champion, also after the settle time: done
        against = None if champion is None else scores(champion)
        checks, blessed, reason = decide(config.promote, tasks, scores(challenger), against)
        metrics = {"challenger": scores(challenger).metrics}
        if against is not None:
            metrics["champion"] = against.metrics
        blessing = Blessing(name, challenger, champion, len(rows), metrics, checks, blessed, reason)
        if not blessed:
            break
        if _alias(client, name, CHAMPION) != champion:
            continue  # moved while we decided: decide again against the new one
        if champion is not None:
            client.set_registered_model_alias(name, PREVIOUS, champion)
        client.set_registered_model_alias(name, CHAMPION, challenger)
        time.sleep(SETTLE_S)
    if blessing is None:  # already the champion when called
        raise ConfigError(f"{name} v{challenger} already holds @{CHAMPION}")
    _tag(client, blessing)
    with atomic_directory(out_dir) as tmp:
        blessing.save(tmp / BLESSING_JSON)
        (tmp / BLESSING_MD).write_text(blessing.markdown())
    log.info("%s v%d: %s", name, challenger, blessing.reason)
    return blessing


def rollback(config: ExperimentConfig) -> int:
    """Give @champion back to @previous-champion (the two swap); the restored version."""
    name, client = config.register.name, MlflowClient()
    previous, current = _alias(client, name, PREVIOUS), _alias(client, name, CHAMPION)
    if previous is None:
        raise ConfigError(f"registered model '{name}' has no @{PREVIOUS} to roll back to")
    client.set_registered_model_alias(name, CHAMPION, previous)
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS, current)
        client.set_model_version_tag(name, str(current), "validation_status", "rolled_back")
    return previous


def _alias(client: MlflowClient, name: str, alias: str) -> int | None:
    """The version behind an alias as an int (REST returns a string), None when unset."""
    try:
        return int(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _tag(client: MlflowClient, blessing: Blessing) -> None:
    tags: dict[str, Any] = {
        "validation_status": "blessed" if blessing.blessed else "rejected",
        "promote.reason": blessing.reason,
        "promote.against": "none" if blessing.champion is None else str(blessing.champion),
        **{f"promote.{k}": f"{v:.6g}" for k, v in blessing.metrics["challenger"].items()},
    }
    for key, value in tags.items():
        client.set_model_version_tag(blessing.model, str(blessing.challenger), key, value)
