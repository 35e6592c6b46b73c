"""The strict parser: tokens, one lexer per format, grouping into families, per-family rules."""
