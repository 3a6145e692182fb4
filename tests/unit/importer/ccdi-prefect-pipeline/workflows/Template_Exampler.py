"""Trimmed from github.com/CBIIT/ChildhoodCancerDataInitiative-Prefect_Pipeline workflows/Template_Exampler.py:
the flow's signature as written, its body left out."""

from prefect import flow


@flow(name="Template Exampler", log_prints=True)
def run_template_exampler(
    bucket: str,
    runner: str,
    number_of_entries: int,
    ccdi_manifest_version: str = "default_to_latest",
) -> None:
    """Pipelinei that generates simulated data for CCDI manifest"""
