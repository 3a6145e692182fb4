"""A small scoring flow."""

from prefect import flow


@flow
def score(batch: int = 100) -> int:
    return batch
