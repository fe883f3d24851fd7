"""ingest: configured source -> events (Parquet + schema.json); opens the MLflow pipeline run."""

from kfp.dsl import Dataset, Output

from htl.components.images import cpu_component


@cpu_component
def ingest(config: dict, run_name: str, parent_run_id: str, events: Output[Dataset]) -> str:
    """Returns the MLflow parent run id that every later step nests under (`parent_run_id`
    when the submitter opened it, else one opened here once the data was read). As the first
    task it also runs the registries' checks on the parameter, before any work."""
    from htl.checks import check
    from htl.config import config_from_dict
    from htl.steps import run_ingest

    source = "pipeline parameter 'config'"
    checked = check(config_from_dict(config, source), source)
    parent = run_ingest(checked, events.path, run_name or None, parent_run_id or None)
    events.metadata["mlflow_run_id"] = parent
    return parent
