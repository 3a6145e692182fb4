"""Sales flows: a daily load and an on-demand backfill."""

from datetime import date, timedelta

from prefect import flow, get_run_logger, task


@task
def extract(region: str, day: date) -> list[dict]:
    return [{"region": region, "day": day.isoformat(), "amount": 100 + i} for i in range(3)]


@task
def load(rows: list[dict]) -> int:
    return len(rows)


@flow(log_prints=True)
def daily_sales(region: str = "eu", day: date | None = None) -> int:
    """Load yesterday's sales for one region."""
    day = day or date.today() - timedelta(days=1)
    loaded = load(extract(region, day))
    get_run_logger().info("loaded %s rows for %s on %s", loaded, region, day)
    return loaded


@flow(name="sales-backfill")
def backfill(start: date, end: date, region: str = "eu") -> int:
    """Reload every day between start and end."""
    days = (end - start).days + 1
    return sum(daily_sales(region, start + timedelta(days=i)) for i in range(days))
