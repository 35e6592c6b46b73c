"""Developer tools: the benchmark (python -m tools.bench) and the golden rewriter."""
