"""Defaults computed by pure expressions: Prefect evaluates them (by importing the flow, or by eval() of
its source); flow-register evaluates them from the source, without running it (issue 19)."""
from prefect import flow

REGIONS = ["eu", "us"]


@flow
def expressions(
    hours: list[int] = list(range(20)),
    names: list[str] = [f"part-{i:02d}" for i in range(4)],
    options: dict = dict(a=1, b=[1, 2]),
    pair: tuple = tuple(sorted({3, 1, 2})),
    smallest: int = min(4, 2, 9),
    largest: int = max([1, 5, 3]),
    count: int = len("abcd"),
    total: int = sum(range(10)),
    upper: str = "sales".upper(),
    parts: list[str] = "a,b,c".split(","),
    joined: str = "-".join(REGIONS),
    stripped: str = "  padded  ".strip().title(),
    template: str = "{}-{:02d}".format("daily", 7),
    mapping: dict[str, int] = {name: len(name) for name in REGIONS},
    evens: set[int] = {x for x in range(10) if x % 2 == 0},
    pairs: list = list(zip(REGIONS, range(2))),
    indexed: list = list(enumerate(REGIONS, start=1)),
    backwards: list = list(reversed(REGIONS)),
    mapped: list[str] = list(map(str, range(3))),
    filtered: list[int] = list(filter(None, [0, 1, 2])),
    flags: bool = any([False, True]) and all([True]),
    rounded: float = round(2.567, 2),
    absolute: int = abs(-3),
    sliced: list[int] = list(range(20))[2:8:2],
    mirrored: str = "abc"[::-1],
    table: list[list[int]] = [[i * j for j in range(3)] for i in range(3)],
    percent: str = "%s-%03d" % ("run", 7),
    padded: str = "7".zfill(3),
    hexed: str = hex(255),
    keys: list[str] = list({"a": 1, "b": 2}.keys()),
    got: int = {"a": 1}.get("b", 2),
    conditional: str = "x" if len(REGIONS) > 1 else "y",
    squares: int = sum(i * i for i in range(5)),
    formatted: str = format(3.14159, ".2f"),
    by_length: list[str] = sorted(["ccc", "a", "bb"], key=len),
    unpacked: list[int] = [*range(3), *[7, 8]],
    merged: dict = {**dict(a=1), "b": 2},
):
    pass
