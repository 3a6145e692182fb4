"""A small load flow."""

from prefect import flow


@flow(name="nightly-load")
def nightly_load(table: str = "orders") -> str:
    return table
