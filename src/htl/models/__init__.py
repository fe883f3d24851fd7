"""Models: one uniform constructor, registered by name (see `htl.models.registry`)."""
