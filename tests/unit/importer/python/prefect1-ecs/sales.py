"""A Prefect 1 flow file as teams wrote them: tasks, `with Flow(...)`, and a register block at the bottom
that sets the ECS run config for each stage and registers into that stage's project, with agent labels.
(A composite of the shape the Prefect 1 team of this project's specification used.)"""

import os
from datetime import timedelta

import prefect
from prefect import Flow, Parameter, task
from prefect.run_configs import ECSRun
from prefect.schedules import Schedule
from prefect.schedules.clocks import CronClock, IntervalClock
from prefect.storage import S3

ACCOUNT = "123456789012"
REGION = "us-east-1"
REPOSITORY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/sales-flows"
STAGES = ["dev", "test", "prod"]
SIZES = {
    "dev": {"cpu": 256, "memory": 512},
    "test": {"cpu": "512", "memory": "1024"},
    "prod": {"cpu": "1 vcpu", "memory": "4 GB"},
}

schedule = Schedule(clocks=[
    CronClock("0 6 * * *", parameter_defaults={"region": "eu"}),
    IntervalClock(timedelta(hours=12)),
])


@task
def extract(region):
    return [region]


@task
def load(rows):
    prefect.context.get("logger").info("%s rows", len(rows))


with Flow("sales-etl", schedule=schedule) as flow:
    region = Parameter("region", default="us")
    load(extract(region))


if __name__ == "__main__":
    for stage in STAGES:
        flow.run_config = ECSRun(
            cpu=SIZES[stage]["cpu"],
            memory=SIZES[stage]["memory"],
            image=f"{REPOSITORY}:{stage}",
            labels=[stage, "ecs"],
            task_role_arn=f"arn:aws:iam::{ACCOUNT}:role/flows-{stage}",
            env={"STAGE": stage, "DB_HOST": os.environ["DB_HOST"]},
        )
        flow.storage = S3(bucket=f"acme-flows-{stage}")
        flow.register(project_name=f"sales-{stage}", set_schedule_active=stage == "prod")
