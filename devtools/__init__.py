"""Developer tooling, apart from the product (register/): the demo and the local Prefect server the demo,
the tests and the benchmarks start. Run from the repository's top: `uv run python -m devtools.demo`."""
