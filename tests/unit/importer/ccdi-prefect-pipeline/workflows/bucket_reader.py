"""Trimmed from github.com/CBIIT/ChildhoodCancerDataInitiative-Prefect_Pipeline workflows/bucket_reader.py:
the flow's signature and docstring as written, its body left out."""

from prefect import flow


@flow(name="Bucket Reader", log_prints=True)
def reader(buckets: list[str], runner: str) -> None:
    """Pipeline that reads contents of a list of bucket names/paths

    Args:
        buckets (list[str]): A list of bucket name/path, e.g., ["my-first-bucket", "my-second-bucket/subdir"]. Click "Add item" to add more list item.
        runner (str): Unique runner name
    """
