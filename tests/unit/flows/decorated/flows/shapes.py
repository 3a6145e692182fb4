import prefect
from prefect import Flow
from prefect import flow as prefect_flow
from team.decorators import etl_flow, keyword_flow, my_flow, optional_flow, pipeline, pipeline_flow, team_flow
from team.decorators import traced_flow


@prefect_flow(name="aliased")
def aliased(x: int = 1):
    pass


@my_flow
def retried(day: str, count: int = 2):
    pass


@etl_flow(name="etl")
def extract(source: str = "s3"):
    """Extract from the source."""


@pipeline
def piped_fn(limit: int = 10):
    pass


@team_flow
def hopped(limit: int = 5):
    pass


@pipeline_flow(config=dict, name="research")
async def research(project_name: str, depth: int = 3):
    pass


@optional_flow
def optional_bare(a: int = 0):
    pass


@optional_flow(name="optional-named")
def optional_called(a: int = 0):
    pass


@prefect.flow
def via_module(a: int = 0):
    pass


def hello_fn(who: str = "world"):
    pass


hello = prefect_flow(hello_fn)
made = Flow(hello_fn, name="made-by-class")
wrapped = pipeline(hello_fn)


@keyword_flow(name="keyword", retries=1)
def keyword_called(a: int = 0):
    pass


@keyword_flow
def keyword_bare(a: int = 0):
    pass


@traced_flow(name="traced", retries=2)
async def traced_called(project_name: str, depth: int = 1):
    pass
