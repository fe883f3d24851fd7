"""register: the configured model's best seed -> MLflow registry, with its alias and lineage."""

from kfp.dsl import Artifact, Dataset, Input, Model

from htl.components.images import component


@component
def register(
    config: dict,
    parent_run_id: str,
    models: Input[list[Model]],
    events: Input[Dataset],
    report: Input[Artifact],
    splits: Input[Dataset],
    kfp_run_id: str,
) -> int:
    import os

    from htl.config import config_from_dict
    from htl.steps import run_register

    os.environ["KFP_RUN_ID"] = kfp_run_id  # read by htl.registry.lineage

    dirs = [m.path for m in models]
    config_ = config_from_dict(config)
    return run_register(config_, dirs, events.path, report.path, parent_run_id, splits.path)
