"""Constants a flow's defaults refer to, as in real repositories."""
from datetime import timedelta

from pipelines.common import ENVIRONMENT, RETRIES as _RETRIES

FALLBACK = "fallback"
BUCKET = f"ooi-rca-qaqc-{ENVIRONMENT}"
REGIONS: tuple[str, ...] = ("eu", "us")
LIMITS = {"rows": 10 * 1000, "retries": _RETRIES + 1}
WINDOW = timedelta(hours=6)
SCALE = -2.5
SCALE_NAME = "scale"
