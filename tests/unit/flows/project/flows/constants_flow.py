"""Defaults from the project's own modules, as `prefect deploy` registers them by importing."""
import pipelines.x.constants as c
import sys

import pipelines.common
from local import LOCAL_DEFAULT
from pipelines import x
from pipelines.x import DEFAULT_SOURCE
from pipelines.x.constants import BUCKET, FALLBACK, LIMITS, REGIONS, SCALE, WINDOW
from prefect import flow
from pipelines.everything import *  # noqa: F403

DAYS = 7
if sys.version_info >= (3, 8) and DAYS > 1:
    MODE = "weekly"
else:
    MODE = "daily"
NAME = FALLBACK + "-" + str(DAYS)


@flow
def constants(
    source: str = FALLBACK,
    bucket: str = BUCKET,
    regions: tuple[str, ...] = REGIONS,
    limits: dict = LIMITS,
    window=WINDOW,
    scale: float = SCALE,
    aliased: str = c.FALLBACK,
    dotted: str = pipelines.common.ENVIRONMENT,
    through_package: str = x.constants.BUCKET,
    reexported: str = DEFAULT_SOURCE,
    local: str = LOCAL_DEFAULT,
    days: int = DAYS,
    mode: str = MODE,
    starred: str = SCALE_NAME,  # noqa: F405
    starred_stdlib: date = date(2024, 2, 29),  # noqa: F405
    name: str = NAME,
    derived: list[str] = [FALLBACK, BUCKET, *REGIONS],
):
    pass
