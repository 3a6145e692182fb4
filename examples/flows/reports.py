"""Weekly business report."""

from prefect import flow, get_run_logger


@flow
def weekly_report(recipients: list[str], include_charts: bool = True) -> int:
    """Build the weekly report and send it to the recipients."""
    get_run_logger().info("sending report to %d recipients (charts: %s)", len(recipients), include_charts)
    return len(recipients)
