"""One KFP component per pipeline step: thin typed adapters over `htl.steps`."""

from htl.components.batch_predict import batch_predict
from htl.components.configure import configure
from htl.components.evaluate import evaluate
from htl.components.finalize import finalize
from htl.components.hpo import hpo
from htl.components.ingest import ingest
from htl.components.labels_split import labels_split
from htl.components.plan_training import plan_training
from htl.components.promote import promote
from htl.components.register import register
from htl.components.significance import significance
from htl.components.train import train

__all__ = [
    "batch_predict",
    "configure",
    "evaluate",
    "finalize",
    "hpo",
    "ingest",
    "labels_split",
    "plan_training",
    "promote",
    "register",
    "significance",
    "train",
]
