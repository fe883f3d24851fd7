"""hpo: one model's Optuna study, tuned to its budget -> its best params and study summary."""

from kfp.dsl import Artifact, Dataset, Input, Output

from htl.components.images import component


@component
def hpo(study: dict, splits: Input[Dataset], best_params: Output[Artifact]) -> None:
    """`study` is a fan-out item: the model, the run's config and the MLflow parent run id
    (kfp.local 2.17.0 substitutes the loop item for task-output parameters consumed inside a
    ParallelFor, so everything a task inside the loop needs travels in the item)."""
    from htl.config import config_from_dict
    from htl.steps import run_hpo

    config = config_from_dict(study["config"])
    summaries = run_hpo(
        config, splits.path, best_params.path, study["parent_run_id"], [study["model"]]
    )
    best_params.metadata.update({"model": study["model"], **summaries[study["model"]]})
