"""A small sync flow."""

from prefect import flow


@flow
def sync(source: str = "bucket") -> str:
    return source
