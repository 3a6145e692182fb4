"""Trimmed from github.com/Levers-Labs/fulcrum-intelligence tasks_manager/tasks_manager/flows/stories.py
(commit 06d2b8b): the flows' decorators and signatures as written, their bodies left out."""

from prefect import flow


@flow(
    name="update-demo-stories",
    description="Update demo stories dates for demo tenant based on granularity",
)
async def update_demo_stories(tenant_identifier: str):
    """Flow to update story dates for a specific tenant"""


@flow(
    name="process-metric-pattern-stories",
    description="Process stories based on pattern run output",
    retries=2,
    retry_delay_seconds=15,
)
async def process_metric_pattern_stories(
    pattern: str, tenant_id_str: str, metric_id: str, grain: str, pattern_run_str: str
):
    """Process stories based on pattern run output."""
