"""A Prefect 3 deploy script: flow.deploy to a pool with a prebuilt image, once per stage of a literal list,
and to_deployment handed to deploy() (the shape of the Prefect 3 team of this project's specification).
The integration tier runs it for real against a local Prefect server."""

import os
from datetime import timedelta

from prefect import deploy
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron

from flows.etl import etl, weekly_report

POOL = os.getenv("WORK_POOL", "docker-python-import")
IMAGE = f"registry.example.com/acme/sales:{os.getenv('IMAGE_TAG', '2024.06.1')}"
STAGES = [("dev", 1), ("prod", 7)]


def main():
    for stage, days in STAGES:
        etl.deploy(
            name=f"sales-{stage}",
            work_pool_name=POOL,
            image=IMAGE,
            build=False,
            push=False,
            cron="0 6 * * *",
            parameters={"region": "eu", "days": days},
            tags=["sales", stage],
            job_variables={"env": {"STAGE": stage}},
            triggers=[DeploymentEventTrigger(expect={"sales.arrived"}, parameters={"region": "us"})],
            description=f"Sales, {stage}",
        )
    deploy(
        etl.to_deployment(name="sales-hourly", interval=timedelta(hours=1), concurrency_limit=1, version="1.2"),
        weekly_report.to_deployment(
            name="weekly-report",
            schedules=[Cron("0 8 * * 1", timezone="Europe/Berlin")],
            parameters={"recipients": ["a@example.com"]},
            work_queue_name="reports",
        ),
        work_pool_name=POOL,
        image=IMAGE,
        build=False,
    )


if __name__ == "__main__":
    main()
