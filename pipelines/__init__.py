"""The training DAG, its runners (kfp.local, a KFP host) and the `htl` CLI."""
