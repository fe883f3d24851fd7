"""labels_split: events -> hybrid labels, chronological splits, encoders fit on train."""

from kfp.dsl import Dataset, Input, Output

from htl.components.images import component


@component
def labels_split(
    config: dict, parent_run_id: str, events: Input[Dataset], splits: Output[Dataset]
) -> None:
    from htl.config import config_from_dict
    from htl.steps import run_labels_split

    card = run_labels_split(config_from_dict(config), events.path, splits.path, parent_run_id)
    splits.metadata.update(
        {f"{name}_rows": stats["rows"] for name, stats in card["splits"].items()}
    )
