"""Defaults and types that cannot be known here: from a package that is not installed, or computed."""
from datetime import date

from ooi_config import BUCKET, Stage
from prefect import flow

from pipelines.x.constants import FALLBACK

try:
    from ooi_config import STAGE_NAME
except ImportError:
    STAGE_NAME = "dev"


def compute():
    return "computed"


@flow
def missing(
    bucket: str = BUCKET,
    stage: Stage = Stage.PROD,
    source: str = FALLBACK,
    today: date = date.today(),
    computed: str = compute(),
    stage_name: str = STAGE_NAME,
):
    pass
