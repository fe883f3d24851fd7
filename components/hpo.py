"""hpo: Optuna search per model; best params per model, and the (model, seed) training jobs."""

from kfp.dsl import Artifact, Dataset, Input, Output

from htl.components.images import component


@component
def hpo(
    config: dict, parent_run_id: str, splits: Input[Dataset], best_params: Output[Artifact]
) -> list[dict]:
    """Returns the (model, seed) jobs, each carrying the MLflow parent run id and the config.

    Both travel inside the loop item because kfp.local 2.17.0 substitutes the loop item for
    task-output parameters consumed inside a ParallelFor.
    """
    from htl.config import config_from_dict
    from htl.steps import run_hpo

    jobs = run_hpo(config_from_dict(config), splits.path, best_params.path, parent_run_id)
    return [{**job, "parent_run_id": parent_run_id, "config": config} for job in jobs]
