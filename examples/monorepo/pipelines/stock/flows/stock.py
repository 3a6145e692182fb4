"""The stock pipeline's flow."""

from prefect import flow
from common.text import headline


@flow
def count_stock(region: str = "eu") -> str:
    return headline(f"stock for {region}")
