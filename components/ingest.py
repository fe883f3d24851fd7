"""ingest: configured source -> events (Parquet + schema.json); opens the MLflow pipeline run."""

from kfp.dsl import Dataset, Output

from htl.components.images import cpu_component


@cpu_component
def ingest(config: dict, run_name: str, events: Output[Dataset]) -> str:
    """Returns the MLflow parent run id that every later step nests under. As the first task
    it also runs the model registry's checks on the parameter, before any work."""
    from htl.checks import check
    from htl.config import config_from_dict
    from htl.steps import run_ingest

    source = "pipeline parameter 'config'"
    parent = run_ingest(
        check(config_from_dict(config, source), source), events.path, run_name or None
    )
    events.metadata["mlflow_run_id"] = parent
    return parent
