"""`flow-register import deploy.py` on the shapes real repositories write their deployments in (each fixture is
a small script of our own with that shape, not a copy of anyone's code): a `work()`/`main()` that something
outside the file calls, a CLI command, Prefect 2-style schedule objects."""

from __future__ import annotations

import textwrap
from pathlib import Path

from register.importer.python import convert

FLOW = "from prefect import flow\n\n\n@flow(name='etl')\ndef etl(day: str = 'x'):\n    pass\n"


def script(tmp_path: Path, text: str, name: str = "deploy.py") -> Path:
    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "flows" / "etl.py").write_text(FLOW)
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def messages(result) -> list[str]:
    return [f"{w.line}:{w.col}: {w.message} [{w.rule}]" for w in result.warnings]


def test_a_function_nothing_in_the_file_calls_is_read_as_if_called_once_and_said_so(tmp_path):
    # worker.py (another module, or a console script) calls work(); the file itself never does
    path = script(tmp_path, """\
        from prefect import serve
        from prefect.client.schemas.schedules import CronSchedule
        from flows.etl import etl


        def work() -> None:
            serve(
                etl.to_deployment(name="sync", schedules=[CronSchedule(cron="0 6 * * *", timezone="Europe/Amsterdam",
                                                                       day_or=True)]),
                etl.to_deployment(name="once", parameters={"day": "mon"}),
            )
        """)
    result = convert(path)
    assert [(d["name"], d.get("schedules")) for d in result.manifest["deployments"]] == [
        ("sync", [{"cron": "0 6 * * *", "timezone": "Europe/Amsterdam", "day_or": True}]), ("once", None)]
    assert "6:1: read as if `work()` were called: nothing in this file calls it [import-uncalled]" in messages(result)
    assert not any(w.rule == "import-empty" for w in result.warnings)


def test_a_parameter_without_a_default_is_an_unknown_warned_at_its_line_and_defaults_are_used(tmp_path):
    path = script(tmp_path, """\
        from flows.etl import etl


        def deploy_all(
            stage,
            pool: str = "ecs",
            *,
            image="acme/etl:1",
        ):
            etl.deploy(name=f"etl-{stage}", work_pool_name=pool, image=image, build=False, tags=[stage, "etl"])
        """)
    result = convert(path)
    (deployment,) = result.manifest["deployments"]
    assert (deployment["name"], deployment["job_variables"]) == ("etl", {"image": "acme/etl:1"})  # named after its flow
    assert "tags" not in deployment  # a list with an unknown item is not known
    assert result.manifest["environments"]["prod"]["work_pool"] == "ecs"
    for what in ("the name", "tags"):
        assert (f"5:5: {what} is left out: 'stage' is a parameter of deploy_all() without a default: its caller gives "
                "it [import-unknown]") in messages(result)
    assert "4:1: read as if `deploy_all()` were called: nothing in this file calls it [import-uncalled]" in messages(result)


def test_a_function_the_file_calls_is_not_read_twice_nor_its_helpers(tmp_path):
    path = script(tmp_path, """\
        from flows.etl import etl


        def one(name):
            etl.deploy(name=name, work_pool_name="p", image="i:1", build=False)


        def main():
            for name in ["a", "b"]:
                one(name)


        run = main

        if __name__ == "__main__":
            run()
        """)
    result = convert(path)
    assert [d["name"] for d in result.manifest["deployments"]] == ["a", "b"]
    assert not any(w.rule == "import-uncalled" for w in result.warnings), messages(result)


def test_a_cli_command_and_an_entry_point_called_under_a_condition(tmp_path):
    # a click/typer command is called by the CLI library, never by the file: read it, with its option defaults;
    # a function called under a condition only the running script knows is the file's call: warned there
    path = script(tmp_path, """\
        import sys
        import typer
        from flows.etl import etl

        app = typer.Typer()


        @app.command()
        def deploy(pool: str = typer.Option("k8s"), tag: str = "nightly"):
            etl.deploy(name="from-cli", work_pool_name="k8s", tags=[tag], image="i:1", build=False)


        def release():
            etl.deploy(name="release", work_pool_name="k8s", image="i:1", build=False)


        if sys.argv[1] == "release":
            release()

        if __name__ == "__main__":
            app()
        """)
    result = convert(path)
    assert [(d["name"], d["tags"]) for d in result.manifest["deployments"]] == [("from-cli", ["nightly"])]
    warnings = messages(result)
    assert "9:1: read as if `deploy()` were called: nothing in this file calls it [import-uncalled]" in warnings
    assert any(w.startswith("17:4: this condition is known only when the script runs") for w in warnings), warnings


def test_a_task_or_another_objects_deploy_method_is_not_read_as_a_deployment(tmp_path):
    path = script(tmp_path, """\
        from prefect import task
        from flows.etl import etl
        from models import Registry


        @task
        def publish(run_id):
            Registry().deploy(run_id)


        def promote(model):
            model.deploy(stage="prod")


        etl.deploy(name="etl", work_pool_name="p", image="i:1", build=False)
        """)
    result = convert(path)
    assert [d["name"] for d in result.manifest["deployments"]] == ["etl"]
    assert not any(w.rule in ("import-uncalled", "import-unknown") for w in result.warnings), messages(result)


def test_prefect_2_schedule_objects_carry_their_time_zone_anchor_and_day_or(tmp_path):
    path = script(tmp_path, """\
        from datetime import datetime, timedelta, timezone
        import pendulum
        from prefect.server.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule
        from flows.etl import etl

        etl.deploy(name="etl", work_pool_name="p", image="i:1", build=False, schedules=[
            CronSchedule(cron="0 6 * * 1-5", timezone="Europe/Amsterdam", day_or=False),
            IntervalSchedule(interval=timedelta(hours=2), anchor_date=datetime(2024, 1, 1, 6, tzinfo=timezone.utc)),
            IntervalSchedule(interval=600, anchor_date=pendulum.datetime(2024, 1, 1, tz="Europe/Paris")),
            RRuleSchedule(rrule="FREQ=WEEKLY;BYDAY=MO", timezone="America/New_York"),
            CronSchedule(cron="0 7 * * *", max_active_runs=3),
        ])
        """)
    result = convert(path)
    assert result.manifest["deployments"][0]["schedules"] == [
        {"cron": "0 6 * * 1-5", "timezone": "Europe/Amsterdam", "day_or": False},
        {"interval": 7200, "anchor_date": "2024-01-01T06:00:00", "timezone": "UTC"},
        {"interval": 600, "anchor_date": "2024-01-01T00:00:00", "timezone": "Europe/Paris"},
        {"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "America/New_York"},
        {"cron": "0 7 * * *"}]
    assert "11:5: schedule 'max_active_runs' is not converted [import-schedule]" in messages(result)
