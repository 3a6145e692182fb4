"""A Prefect 2 deployment script: Deployment.build_from_flow with storage and infrastructure blocks, one
deployment on Cloud Run with its code in GCS, one on ECS with its code in S3 (the shape of the multi-cloud
team of this project's specification)."""

import os
from datetime import timedelta

from prefect.deployments import Deployment
from prefect.filesystems import GCS, S3
from prefect.server.schemas.schedules import CronSchedule, IntervalSchedule
from prefect_aws.ecs import ECSTask
from prefect_gcp.cloud_run import CloudRunJob
from prefect_gcp.credentials import GcpCredentials

from flows.ingest import ingest

PROJECT = "acme-data"
IMAGE = f"us-docker.pkg.dev/{PROJECT}/flows/ingest:2.14.3"

cloud_run = CloudRunJob(
    image=IMAGE,
    region="us-central1",
    cpu=2,
    memory=4,
    memory_unit="Gi",
    timeout=3600,
    credentials=GcpCredentials.load("acme-gcp"),
)

deployment = Deployment.build_from_flow(
    flow=ingest,
    name="ingest-gcs",
    work_queue_name="cloud-run",
    infrastructure=cloud_run,
    storage=GCS.load("flows-bucket"),
    path="ingest",
    schedule=CronSchedule(cron="0 3 * * *", timezone="America/New_York"),
    parameters={"source": "gcs"},
    tags=["ingest", "gcp"],
)
deployment.apply()

Deployment.build_from_flow(
    flow=ingest,
    name="ingest-s3",
    work_pool_name="ecs-prod",
    work_queue_name="default",
    infrastructure=ECSTask(
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/ingest:2.14.3",
        cpu=1024,
        memory=2048,
        env={"BUCKET": "acme-raw"},
        cluster="flows",
    ),
    storage=S3(bucket_path="acme-flows/ingest"),
    schedule=IntervalSchedule(interval=timedelta(hours=6)),
    parameters={"source": "s3", "days": int(os.getenv("DAYS", "2"))},
    is_schedule_active=False,
    apply=True,
)
