"""The reports pipeline's flow."""

from prefect import flow


@flow
def weekly_report(team: str = "data") -> str:
    return f"report for {team}"
