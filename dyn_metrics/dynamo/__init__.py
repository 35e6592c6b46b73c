"""Dynamo's runtime hierarchy, its ``.metrics()`` facade, configuration, health and server glue."""
