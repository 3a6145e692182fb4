"""A project module: importing it would leave a mark."""
__import__("pathlib").Path(__import__("os").environ["MARKS"], "imported-module").touch()

REGION = "eu"


def stamp(what):
    __import__("pathlib").Path(__import__("os").environ["MARKS"], what).touch()
    return what
