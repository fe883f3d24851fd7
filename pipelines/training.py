"""The training DAG: ingest -> labels_split -> hpo -> (train -> evaluate) per model x seed
-> significance -> register -> promote.

The fan-out iterates over the jobs HPO returns, which come from the `config` parameter, so
the config is the single source of truth for models and seeds, also when edited in the KFP UI.
"""

from typing import Any

from kfp import dsl

from htl.components import (
    evaluate,
    hpo,
    ingest,
    labels_split,
    promote,
    register,
    significance,
    train,
)

PIPELINE_NAME = "htl-training"


def make_pipeline(default_config: dict[str, Any], parallelism: int = 2, gpu: bool = False):
    """Build the pipeline function with `default_config` as the `config` parameter's default."""

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Hybrid-target MTL: HPO, training, significance, registration.",
    )
    def training_pipeline(
        config: dict = default_config, run_name: str = "", parent_run_id: str = ""
    ) -> dsl.Markdown:
        ingest_task = ingest(
            config=config, run_name=run_name, parent_run_id=parent_run_id
        ).set_display_name("ingest")
        parent = ingest_task.outputs["Output"]
        split_task = labels_split(
            config=config, parent_run_id=parent, events=ingest_task.outputs["events"]
        ).set_display_name("labels + split")
        splits = split_task.outputs["splits"]
        hpo_task = hpo(config=config, parent_run_id=parent, splits=splits).set_display_name("hpo")
        _on_gpu(hpo_task, gpu)
        with dsl.ParallelFor(hpo_task.outputs["Output"], parallelism=parallelism) as job:
            train_task = train(
                config=config,
                job=job,
                splits=splits,
                best_params=hpo_task.outputs["best_params"],
            ).set_display_name("train")
            _on_gpu(train_task, gpu)
            eval_task = evaluate(
                config=config, job=job, model=train_task.outputs["model"], splits=splits
            ).set_display_name("evaluate")
        sig_task = significance(
            config=config, parent_run_id=parent, results=dsl.Collected(eval_task.outputs["results"])
        ).set_display_name("significance")
        register_task = register(
            config=config,
            parent_run_id=parent,
            models=dsl.Collected(train_task.outputs["model"]),
            events=ingest_task.outputs["events"],
            report=sig_task.outputs["report"],
            splits=splits,
            kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        ).set_display_name("register")
        promote(
            config=config, parent_run_id=parent, version=register_task.output, splits=splits
        ).set_display_name("promote")
        return sig_task.outputs["report_markdown"]

    return training_pipeline


def _on_gpu(task: dsl.PipelineTask, gpu: bool) -> None:
    if gpu:
        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
