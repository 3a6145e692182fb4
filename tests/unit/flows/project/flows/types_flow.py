"""Parameter types of every kind Prefect describes, with descriptions from the docstring."""
from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Dict, List, Literal, Optional, Union
from uuid import UUID

from pydantic import Field, SecretStr

from pipelines.models import Color, Node, Priority, Provider, Source, Window
from prefect import flow


@flow(name="all-the-types")
def typed(
    provider: Provider,
    source: Source,
    when: date = date(2024, 1, 31),
    at: datetime | None = None,
    mode: Literal["full", "delta"] = "delta",
    priority: Priority = Priority.HIGH,
    color: Color = Color.GREEN,
    window: Optional[Window] = None,
    count: Union[int, str] = 3,
    ratio: float = 0.5,
    tags: List[str] = ["a", "b"],
    mapping: Dict[str, int] = {"a": 1},
    nested: dict[str, list[int]] | None = None,
    limit: Annotated[int, Field(ge=0, le=10)] = 5,
    amount: Decimal = Decimal("1.50"),
    path: Path = Path("data/in"),
    key: UUID | None = None,
    secret: SecretStr | None = None,
    anything: Any = None,
    tree: Node | None = None,
    untyped=("x", 1),
    delta: dt.timedelta = dt.timedelta(minutes=90),
    documented: str = Field("d", description="from Field"),
    *args: int,
    json: bool = False,
    flag: "bool" = True,
    **kwargs,
):
    """Load everything.

    Args:
        provider: where from
        source: the source,
            over two lines
        mode: how much
        flag: a string annotation
    """


@flow
async def positional(a: int, /, b: str = "b", *, c: float = 1.0):
    pass


class NotAModel:
    pass


@flow
def arbitrary(thing: NotAModel, other: "Undefined" = 1, copy: int = 0):
    pass
