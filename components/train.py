"""train: one (model, seed) job with the params HPO chose -> model directory."""

from kfp.dsl import Artifact, Dataset, Input, Model, Output

from htl.components.images import component


@component
def train(
    job: dict,
    splits: Input[Dataset],
    best_params: Input[Artifact],
    model: Output[Model],
) -> None:
    from htl.config import config_from_dict
    from htl.steps import run_train

    name, seed = str(job["model"]), int(job["seed"])
    summary = run_train(
        config_from_dict(job["config"]),
        splits.path,
        best_params.path,
        name,
        seed,
        model.path,
        job["parent_run_id"],
    )
    model.metadata.update(summary)
