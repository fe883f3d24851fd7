"""promote: the champion/challenger gate on the version `register` created -> blessing."""

from kfp.dsl import Artifact, Dataset, Input, Markdown, Output

from htl.components.images import component


@component
def promote(
    config: dict,
    parent_run_id: str,
    version: int,
    splits: Input[Dataset],
    blessing: Output[Artifact],
    blessing_markdown: Output[Markdown],
) -> bool:
    """Returns whether the version was blessed (and now holds @champion)."""
    import shutil

    from htl.artifacts import BLESSING_MD
    from htl.config import config_from_dict
    from htl.steps import run_promote

    result = run_promote(
        config_from_dict(config), splits.path, blessing.path, parent_run_id, version
    )
    blessing.metadata.update({"blessed": result["blessed"], "reason": result["reason"]})
    shutil.copyfile(f"{blessing.path}/{BLESSING_MD}", blessing_markdown.path)
    return bool(result["blessed"])
