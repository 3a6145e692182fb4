from prefect import flow


@flow(name="ingest")
def ingest(source: str = "gcs", days: int = 1):
    """Ingest files from the bucket."""
    return days
