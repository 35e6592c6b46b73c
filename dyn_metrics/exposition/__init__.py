"""Exposition formats: encoders of the plain model, content negotiation, the parser and checker."""
