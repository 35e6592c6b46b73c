"""The HTTP stack of the system status server: it knows nothing of metrics but a render callable."""
