"""Energy forecast ingestion, started by an event when a new forecast arrives."""

from prefect import flow, get_run_logger


@flow
def ingest_forecast(source: str = "entsoe", horizon_hours: int = 48) -> str:
    """Fetch the newest forecast from a source and store it."""
    get_run_logger().info("ingesting %sh forecast from %s", horizon_hours, source)
    return f"{source}:{horizon_hours}"
