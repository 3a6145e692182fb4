"""Trimmed from github.com/Levers-Labs/fulcrum-intelligence tasks_manager/tasks_manager/flows/semantic_sync.py
(commit 06d2b8b): the flow's decorator and signature as written, its body left out. Granularity was
imported from the project's commons package; the members used here are written out."""

from enum import Enum

from prefect import flow


class Granularity(str, Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@flow(
    name="semantic_data_sync",
    flow_run_name="semantic_data_sync:grain={grain}",
    description="Emits sync events for all tenants for a specific grain",
)
async def semantic_data_sync(grain: Granularity) -> None:
    """Trigger semantic data sync events for all tenants."""
