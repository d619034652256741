"""Model-card evaluations: corpora, suites, the torch runner and the demo family."""
