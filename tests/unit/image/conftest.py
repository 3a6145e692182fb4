"""The image stage's unit tests share a stand-in Docker CLI."""

from support.fake_docker import fake_docker  # noqa: F401
