"""Stands for a package installed where `prefect deploy` ran, not where flow-register runs."""
from enum import Enum

BUCKET = "ooi-rca-qaqc-prod"
STAGE_NAME = "prod"


class Stage(str, Enum):
    DEV = "dev"
    PROD = "prod"
