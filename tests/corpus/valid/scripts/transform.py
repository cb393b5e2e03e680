"""A script of the full_format.yaml example: the folder is its `cwd` and `scripts/*.py` an input."""
