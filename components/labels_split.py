"""labels_split: events -> hybrid labels, chronological splits, encoders fit on train."""

from kfp.dsl import Dataset, Input, Output

from htl.components.images import component


@component
def labels_split(
    config: dict, parent_run_id: str, events: Input[Dataset], splits: Output[Dataset]
) -> list[dict]:
    """Returns the HPO fan-out: one study item per model, carrying the config and the MLflow
    parent run id (see hpo)."""
    from htl.config import config_from_dict
    from htl.steps import run_labels_split

    parsed = config_from_dict(config)
    card = run_labels_split(parsed, events.path, splits.path, parent_run_id)
    splits.metadata.update(
        {f"{name}_rows": stats["rows"] for name, stats in card["splits"].items()}
    )
    return [
        {"model": model, "config": config, "parent_run_id": parent_run_id}
        for model in parsed.models
    ]
