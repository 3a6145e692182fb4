"""Stand-in for rca_data_tools/qaqc/scheduler.py of github.com/OOI-CabledArray/rca-data-tools (not in
the stored snapshot): a flow taking the parameter its prefect.yaml passes."""

from prefect import flow


@flow
def trigger_workflow(workflow_file: str):
    """Dispatch a GitHub Actions workflow of QAQC_dashboard."""
