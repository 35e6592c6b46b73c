"""Exposition formats: the encoders of the plain model and what surrounds them.

``text`` (Dynamo's bytes, text 0.0.4) and ``openmetrics`` encode
:class:`~dyn_metrics.model.Family` records; ``negotiation`` picks one for a
request and ``select`` keeps the families ``name[]`` asks for; ``parse`` is the
strict parser back to the model, and ``check`` the checker and its command line.
"""
