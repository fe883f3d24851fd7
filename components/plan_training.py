"""plan_training: the studies' fan-in -> all best params in one artifact, the training jobs."""

from kfp.dsl import Artifact, Input, Output

from htl.components.images import component


@component
def plan_training(
    config: dict,
    parent_run_id: str,
    studies: Input[list[Artifact]],
    best_params: Output[Artifact],
) -> list[dict]:
    """Returns the (model, seed) jobs, each carrying the MLflow parent run id and the config
    (see hpo on why the loop items carry them)."""
    from htl.config import config_from_dict
    from htl.steps import run_plan_training

    jobs = run_plan_training(config_from_dict(config), [s.path for s in studies], best_params.path)
    return [{**job, "parent_run_id": parent_run_id, "config": config} for job in jobs]
