"""Flows run by webhook events."""

from prefect import flow


@flow(name="on-upload")
def on_upload(key: str = "") -> str:
    return key


@flow(name="on-delete")
def on_delete() -> None:
    return None
