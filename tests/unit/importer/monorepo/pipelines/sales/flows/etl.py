"""Sales flows of a monorepo whose prefect.yaml sits beside them and is deployed from the repository's top."""

from prefect import flow


@flow
def etl(region: str = "eu", days: int = 1) -> int:
    """Load some days of one region."""
    return days
