"""Bulk tools for the population registry: a synthetic registry generator
(generator.py, names.py), registry files (records.py) and the pipeline that
seals people on worker processes and writes them in batches (pipeline.py)."""
