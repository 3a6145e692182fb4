from prefect import flow

@flow
def oops(:
    pass
