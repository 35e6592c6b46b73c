"""Live metrics: the value cells, the metric handles and their vecs, one file per type."""
