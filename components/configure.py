"""configure: the run's config from the compiled defaults and the parameters, checked once."""

from htl.components.images import component


@component
def configure(defaults: dict, config: dict, config_overrides: dict) -> dict:
    """`config` then `config_overrides` deep-merged onto `defaults`, validated and checked
    before any work; every later task receives the result."""
    from htl.steps import run_configure

    return run_configure(defaults, config, config_overrides)
