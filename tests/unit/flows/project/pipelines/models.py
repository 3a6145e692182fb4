"""Parameter types of the project's own, as pydantic models and enums."""
from __future__ import annotations

import enum
from datetime import date
from enum import Enum, IntEnum
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .x.constants import FALLBACK


class Provider(str, Enum):
    """Where the data comes from."""

    ENTSOE = "entsoe"
    NORDPOOL = "nordpool"


class Priority(IntEnum):
    LOW = 1
    HIGH = 2


class Color(enum.Enum):
    RED = enum.auto()
    GREEN = enum.auto()


class Window(BaseModel):
    """A time window."""

    model_config = ConfigDict(extra="forbid")

    start: date
    days: int = Field(1, ge=1, description="how many days")
    label: Optional[str] = None

    @field_validator("days")
    @classmethod
    def positive(cls, value: int) -> int:
        return value


class Source(BaseModel):
    provider: Provider = Provider.ENTSOE
    name: str = FALLBACK
    kind: Literal["api", "file"] = "api"
    window: Window | None = None
    tags: list[str] = []


class Node(BaseModel):
    """A tree of models: the class names itself."""

    name: str
    children: list[Node] = []
    parent: Optional["Node"] = None
