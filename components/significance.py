"""significance: every (model, seed) metric record -> mean ± std, t-tests, the report."""

from kfp.dsl import Artifact, Dataset, Input, Markdown, Output

from htl.components.images import cpu_component


@cpu_component
def significance(
    config: dict,
    parent_run_id: str,
    results: Input[list[Dataset]],
    report: Output[Artifact],
    report_markdown: Output[Markdown],
) -> None:
    import shutil

    from htl.config import config_from_dict
    from htl.steps import run_significance

    markdown = run_significance(
        config_from_dict(config), [r.path for r in results], report.path, parent_run_id
    )
    shutil.copyfile(markdown, report_markdown.path)
