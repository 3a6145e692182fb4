"""Every part of this file that Python would run on import, or on evaluating the signature, leaves a mark
in the folder $MARKS: reading the flow must leave none."""
import pathlib
from typing import Optional

from pydantic import BaseModel
from prefect import flow

from helpers import REGION, stamp

pathlib.Path(__import__("os").environ["MARKS"], "top-level").touch()
COMPUTED = stamp("top-level-call")


def decorate(function):
    stamp("decorator")
    return function


class Options(BaseModel):
    size: int = __import__("pathlib").Path(__import__("os").environ["MARKS"], "class-body").touch() or 1


@flow(name=stamp("flow-name"))
@decorate
def marked(
    region: str = REGION,
    day: stamp("annotation") = None,
    size: int = stamp("default"),
    computed: str = COMPUTED,
    options: Options | None = None,
    touched: object = __import__("pathlib").Path(__import__("os").environ["MARKS"], "default-import").touch(),
    # pydantic resolves a string inside a type with eval(): flow-register reads it itself
    nested: list["__import__('pathlib').Path(__import__('os').environ['MARKS'], 'forward-ref').touch()"] = [],
    optional: Optional["__import__('pathlib').Path(__import__('os').environ['MARKS'], 'optional').touch()"] = None,
    deeper: list["'__import__(\"pathlib\").Path(__import__(\"os\").environ[\"MARKS\"], \"deeper\").touch()'"] = [],
):
    stamp("body")
