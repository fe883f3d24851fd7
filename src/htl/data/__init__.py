"""Data: event sources, the hybrid label chain, chronological splits and feature encoding."""
