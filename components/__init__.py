"""One KFP component per pipeline step: thin typed adapters over `htl.steps`."""

from components.evaluate import evaluate
from components.hpo import hpo
from components.ingest import ingest
from components.labels_split import labels_split
from components.register import register
from components.significance import significance
from components.train import train

__all__ = ["evaluate", "hpo", "ingest", "labels_split", "register", "significance", "train"]
