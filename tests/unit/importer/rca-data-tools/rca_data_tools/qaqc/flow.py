"""Trimmed from github.com/OOI-CabledArray/rca-data-tools rca_data_tools/qaqc/flow.py: the flow's
signature and decorator as written, its body and imports left out. S3_BUCKET was imported from
rca_data_tools.qaqc.constants; its value is written here."""

from prefect import flow

S3_BUCKET = "ooi-rca-qaqc-prod"


@flow(timeout_seconds=28800)  # time out after 8 hours
def qaqc_pipeline_flow(
    site: str,
    time_string: str,
    span: str = "1",
    threshold: int = 5000000,
    stage: int = None,
    # cloud args
    fs_kwargs: dict = {},
    sync_to_s3: bool = True,
    s3_bucket: str = S3_BUCKET,
):
    pass
