import prefect
from prefect import flow as prefect_flow, task


@prefect_flow(name="nightly-load")
def nightly(region: str, days: int = 1, dry_run: bool = False):
    """Load the night's data."""


@prefect.flow
async def hourly(source: str = "api", limit: int | None = None):
    pass


@prefect_flow
def flexible(base: str = "x", **options):
    pass


@task
def helper(x: int):
    pass


def plain_function():
    pass
