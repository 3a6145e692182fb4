"""The sales pipeline's flow."""

from prefect import flow
from common.text import headline


@flow
def daily_sales(region: str = "eu") -> str:
    return headline(f"sales for {region}")
