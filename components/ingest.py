"""ingest: configured source -> events (Parquet + schema.json); opens the MLflow pipeline run."""

from kfp.dsl import Dataset, Output

from htl.components.images import component


@component
def ingest(
    config: dict, run_name: str, parent_run_id: str, kfp_run_id: str, events: Output[Dataset]
) -> str:
    """Returns the MLflow parent run id that every later step nests under (`parent_run_id`
    when the submitter opened it, else one opened here once the data was read, tagged with
    the KFP run id for the exit handler)."""
    from htl.config import config_from_dict
    from htl.steps import run_ingest

    parent = run_ingest(
        config_from_dict(config), events.path, run_name or None, parent_run_id or None, kfp_run_id
    )
    events.metadata["mlflow_run_id"] = parent
    return parent
