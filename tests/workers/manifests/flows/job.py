from prefect import flow


@flow
def job():
    """One flow for every size the worker tier registers."""
