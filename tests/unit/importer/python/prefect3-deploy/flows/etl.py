from prefect import flow


@flow(name="sales-etl")
def etl(region: str = "eu", days: int = 1) -> int:
    """Load the sales of some days."""
    return days


@flow
def weekly_report(recipients: list[str], charts: bool = True) -> int:
    return len(recipients)
