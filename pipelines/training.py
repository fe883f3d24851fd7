"""The training DAG: configure -> ingest -> labels_split -> hpo per model -> plan_training ->
(train -> evaluate) per model x seed -> significance -> register -> promote, inside an exit
handler (finalize).

Parameters: `config` (shown whole in the KFP UI) and `config_overrides` are deep-merged onto
the compiled defaults by `configure`, so a run that changes one key keeps the rest. The fan-out
iterates over the jobs HPO returns, which come from that merged config.

`training_pipeline` below is the DAG on the built-in defaults, for
`kfp dsl compile --py pipelines/training.py`; `htl compile` builds it from a config file and
checks it for a cluster first.
"""

from dataclasses import dataclass, field
from typing import Any

from kfp import dsl, kubernetes

from htl.components import (
    configure,
    evaluate,
    finalize,
    hpo,
    ingest,
    labels_split,
    plan_training,
    promote,
    register,
    significance,
    train,
)
from htl.components.images import Images
from htl.config import CHECKPOINT_MOUNT, ClusterConfig, TaskResources, config_to_dict

PIPELINE_NAME = "htl-training"

#: Steps that change something outside their own outputs: never served from KFP's cache.
#: (Every step logs to MLflow; logging is not counted.)
SIDE_EFFECTS = frozenset({"ingest", "register", "promote", "finalize"})
#: Steps that may run on a GPU node, with the GPU image, retries and the checkpoint volume.
GPU_STEPS = frozenset({"hpo", "train"})


@dataclass(frozen=True)
class Deployment:
    """Where the tasks run. `cluster` None is a local run (kfp.local): no requests, retries or
    timeouts. `images` None keeps the components' own image (the subprocess runner uses none).
    `env` is set on every task."""

    cluster: ClusterConfig | None = None
    images: Images | None = None
    gpu: bool = False
    env: dict[str, str] = field(default_factory=dict)
    secret_env: tuple[str, ...] = ()  # variables every task takes from cluster.env_secret

    def place(self, task: dsl.PipelineTask, step: str) -> dsl.PipelineTask:
        """Image, caching, resources, retries, deadline and GPU of one task."""
        task.set_display_name(step.replace("_", " + ") if step == "labels_split" else step)
        if step in SIDE_EFFECTS:
            task.set_caching_options(False)
        on_gpu = self.gpu and step in GPU_STEPS
        if self.images is not None:
            image = self.images.gpu if on_gpu else self.images.cpu
            task.set_container_image(image)
            task.set_env_variable("HTL_IMAGE", image)
        for name, value in self.env.items():
            task.set_env_variable(name, value)
        if self.cluster is None:
            return task
        c = self.cluster
        resources: TaskResources = getattr(c, step) if step in GPU_STEPS else c.steps
        task.set_cpu_request(resources.cpu).set_cpu_limit(resources.cpu)
        task.set_memory_request(resources.memory).set_memory_limit(resources.memory)
        kubernetes.set_timeout(task, resources.timeout_s)
        if resources.retries:
            task.set_retry(
                resources.retries,
                backoff_duration="60s",
                backoff_factor=2.0,
                backoff_max_duration=f"{resources.timeout_s}s",
            )
        if on_gpu:
            task.set_accelerator_type(c.gpu_type).set_accelerator_limit(1)
            if c.gpu_toleration:
                kubernetes.add_toleration(
                    task, key=c.gpu_toleration, operator="Exists", effect="NoSchedule"
                )
        if c.env_secret and self.secret_env:
            kubernetes.use_secret_as_env(task, c.env_secret, {e: e for e in self.secret_env})
        if step in GPU_STEPS and c.checkpoint_pvc:
            kubernetes.mount_pvc(task, pvc_name=c.checkpoint_pvc, mount_path=CHECKPOINT_MOUNT)
        return task


def make_pipeline(
    defaults: dict[str, Any],
    parallelism: int = 2,
    deployment: Deployment | None = None,
    pipeline_root: str | None = None,
):
    """Build the pipeline function with `defaults` as the compiled config."""
    d = deployment or Deployment()

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Hybrid-target MTL: HPO, training, significance, registration, promotion.",
        pipeline_root=pipeline_root,
    )
    def training_pipeline(
        config: dict = defaults,
        config_overrides: dict = {},  # noqa: B006 - a pipeline parameter's default
        run_name: str = "",
        parent_run_id: str = "",
    ) -> None:
        params = {"defaults": defaults, "config": config, "config_overrides": config_overrides}
        exit_task = d.place(
            finalize(
                **params, parent_run_id=parent_run_id, kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER
            ),
            "finalize",
        )
        with dsl.ExitHandler(exit_task, name="htl-run"):
            merged = d.place(configure(**params), "configure").output
            ingest_task = d.place(
                ingest(
                    config=merged,
                    run_name=run_name,
                    parent_run_id=parent_run_id,
                    kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                ),
                "ingest",
            )
            parent = ingest_task.outputs["Output"]
            split_task = d.place(
                labels_split(
                    config=merged, parent_run_id=parent, events=ingest_task.outputs["events"]
                ),
                "labels_split",
            )
            splits = split_task.outputs["splits"]
            with dsl.ParallelFor(split_task.outputs["Output"], parallelism=parallelism) as study:
                hpo_task = d.place(hpo(study=study, splits=splits), "hpo")
            plan_task = d.place(
                plan_training(
                    config=merged,
                    parent_run_id=parent,
                    studies=dsl.Collected(hpo_task.outputs["best_params"]),
                ),
                "plan_training",
            )
            with dsl.ParallelFor(plan_task.outputs["Output"], parallelism=parallelism) as job:
                train_task = d.place(
                    train(job=job, splits=splits, best_params=plan_task.outputs["best_params"]),
                    "train",
                )
                eval_task = d.place(
                    evaluate(job=job, model=train_task.outputs["model"], splits=splits),
                    "evaluate",
                )
            sig_task = d.place(
                significance(
                    config=merged,
                    parent_run_id=parent,
                    results=dsl.Collected(eval_task.outputs["results"]),
                    studies=plan_task.outputs["best_params"],
                ),
                "significance",
            )
            register_task = d.place(
                register(
                    config=merged,
                    parent_run_id=parent,
                    models=dsl.Collected(train_task.outputs["model"]),
                    events=ingest_task.outputs["events"],
                    report=sig_task.outputs["report"],
                    splits=splits,
                    kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                ),
                "register",
            )
            d.place(
                promote(
                    config=merged,
                    parent_run_id=parent,
                    version=register_task.output,
                    splits=splits,
                ),
                "promote",
            )

    return training_pipeline


def portable_defaults(config_dict: dict[str, Any]) -> dict[str, Any]:
    """The config as compiled into a YAML for another machine: without `workdir`, which then
    resolves inside each pod (its working directory), and without the `cluster` section, which
    the compiled task settings already hold."""
    return {k: v for k, v in config_dict.items() if k not in ("workdir", "cluster")}


def _module_pipeline():
    from htl.config import ExperimentConfig

    cluster = ExperimentConfig().cluster
    return make_pipeline(
        portable_defaults(config_to_dict(ExperimentConfig())),
        parallelism=4,
        deployment=Deployment(cluster=cluster, images=Images.from_env()),
    )


#: The DAG on the built-in defaults with cluster task settings and the images in `HTL_IMAGE` /
#: `HTL_GPU_IMAGE`; stores come from the pods' environment (MLFLOW_TRACKING_URI, ...).
training_pipeline = _module_pipeline()
