"""finalize: the DAG's exit handler; a failed run's MLflow pipeline run is marked FAILED."""

from kfp import dsl

from htl.components.images import component


@component
def finalize(
    defaults: dict,
    config: dict,
    config_overrides: dict,
    parent_run_id: str,
    kfp_run_id: str,
    status: dsl.PipelineTaskFinalStatus,
) -> None:
    """Runs whatever the DAG's outcome; closes what a failed or cancelled run left RUNNING."""
    import logging

    from htl.steps import run_finalize

    error = status.error_message if status.state != "SUCCEEDED" else ""
    closed = run_finalize(
        defaults, config, config_overrides, parent_run_id, kfp_run_id, status.state, error
    )
    logging.getLogger("htl.finalize").warning("KFP run %s: %s", status.state, closed or "ok")
