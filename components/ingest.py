"""ingest: configured source -> events (Parquet + schema.json); opens the MLflow pipeline run."""

from kfp.dsl import Dataset, Output

from components.images import cpu_component


@cpu_component
def ingest(config: dict, run_name: str, events: Output[Dataset]) -> str:
    """Returns the MLflow parent run id that every later step nests under."""
    from htl.config import config_from_dict
    from htl.steps import run_ingest

    parent = run_ingest(config_from_dict(config), events.path, run_name or None)
    events.metadata["mlflow_run_id"] = parent
    return parent
