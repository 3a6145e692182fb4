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


def test_one_name_for_deployments_of_several_flows_keeps_each_under_a_name_of_its_own(tmp_path):
    # a helper that deploys any flow it is given under one fixed name: Prefect keeps etl/nightly and report/nightly
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "report.py").write_text("from prefect import flow\n\n\n@flow\ndef report():\n    pass\n")
    path = script(tmp_path, """\
        from flows.etl import etl
        from flows.report import report


        def create(flow, cron):
            flow.deploy("nightly", work_pool_name="p", image="i:1", build=False, cron=cron)


        if __name__ == "__main__":
            create(etl, "0 1 * * *")
            create(report, "0 2 * * *")
            create(report, "0 3 * * *")  # the same flow's deployment again: the later wins, as on the server
        """)
    result = convert(path)
    assert [(d["name"], d["entrypoint"], d["schedules"]) for d in result.manifest["deployments"]] == [
        ("nightly", "flows/etl.py:etl", [{"cron": "0 1 * * *"}]),
        ("nightly-report", "flows/report.py:report", [{"cron": "0 3 * * *"}])]
    assert ("6:5: 'nightly' is also the name of a deployment of flows/etl.py:etl; Prefect names a deployment within "
            "its flow, a manifest's names are unique: this one of flows/report.py:report is 'nightly-report' "
            "(registered under that name; rename it as you like) [import-name]") in messages(result)


def test_defaults_loaded_at_run_time_merged_with_literal_ones_keep_what_is_written(tmp_path):
    path = script(tmp_path, """\
        import os
        from prefect.blocks.system import JSON
        from flows.etl import etl

        SIZES = {"cpu": 1024, "memory": 2048}
        REGISTRY = os.environ["REGISTRY"]

        defaults = JSON.load("job-defaults").value
        etl.deploy("etl", work_pool_name="p", build=False, image=os.path.join(REGISTRY, "etl") + ":1",
                   job_variables={**defaults, **SIZES, "env": {"MODE": "batch"}})
        """)
    result = convert(path)
    assert result.manifest["deployments"][0]["job_variables"] == {
        "image": "${REGISTRY}/etl:1", "cpu": 1024, "memory": 2048, "env": {"MODE": "batch"}}
    assert any(w.startswith("8:12: what job_variables unpacks (`**`) is left out: '.value' is known only when the "
                            "script runs") for w in messages(result)), messages(result)


def test_a_name_set_under_a_condition_only_the_run_knows_is_unknown_after_it_not_undefined(tmp_path):
    path = script(tmp_path, """\
        import os
        from flows.etl import etl

        pool = "default"
        if os.environ["GPU"] == "1":
            pool = "gpu"
        etl.deploy("etl", work_pool_name=pool, image="i:1", build=False)
        """)
    result = convert(path)
    assert "work_pool" not in result.manifest["environments"]["prod"]  # "default" or "gpu": the run decides
    assert any(w.startswith("5:4: the work pool is left out: it is set under a condition known only when the script "
                            "runs") for w in messages(result)), messages(result)


def test_a_module_in_a_newer_pythons_syntax_is_said_unread_for_each_name_it_gives(tmp_path):
    (tmp_path / "settings.py").write_text('POOL = "ecs"\nIMAGE = "i:1"\ntype Row = dict[str, str]\n')  # 3.12's `type`
    path = script(tmp_path, """\
        from settings import IMAGE, POOL
        from flows.etl import etl

        etl.deploy("etl", work_pool_name=POOL, image=IMAGE, build=False)
        """)
    result = convert(path)
    said = [w for w in messages(result) if w.startswith("1:1:")]
    import sys
    if sys.version_info >= (3, 12):  # read where Python knows the syntax
        assert result.manifest["environments"]["prod"]["work_pool"] == "ecs" and not said
        return
    assert len(said) == 2 and all("settings.py:3:6 is not read: not valid Python: invalid syntax (read as Python 3.11 "
                                  "reads it; a file written for a newer Python is read by flow-register run on that "
                                  "Python)" in w for w in said), said


def test_a_prefect_1_flow_file_registered_by_the_cli_is_imported_as_the_cli_registers_it(tmp_path):
    # `prefect register --project etl -p flows/` registered every Flow of the files; the file itself never calls
    # flow.register(): its run config and schedule are what was registered
    path = script(tmp_path, """\
        from prefect import Flow, task
        from prefect.run_configs import ECSRun
        from prefect.schedules import IntervalSchedule
        from datetime import timedelta

        RUN_CONFIG = ECSRun(labels=["prod"], cpu=2048, memory=4096)


        @task
        def hello():
            pass


        with Flow("hello", run_config=RUN_CONFIG, schedule=IntervalSchedule(interval=timedelta(hours=1))) as flow:
            hello()

        with Flow("registered-here") as other:
            hello()
        other.register()
        """, name="hello.py")
    result = convert(path)
    assert [(d["name"], d.get("resources"), d.get("schedules")) for d in result.manifest["deployments"]] == [
        ("registered-here", None, None), ("hello", {"cpu": 2, "memory": "4Gi"}, [{"interval": 3600}])]
    assert ("14:6: flow 'hello' is not registered in this file (`prefect register --project NAME -p FILE`, Prefect 1's "
            "CLI, did it): imported as that registers it, in environment 'prod' (-e NAME for another) "
            "[import-prefect1-cli]") in messages(result)
    assert not any("'registered-here' is not registered" in w for w in messages(result))


def test_a_prefect_2_deployment_without_a_queue_went_to_the_queue_default(tmp_path):
    path = script(tmp_path, """\
        from prefect.deployments import Deployment
        from prefect.infrastructure.kubernetes import KubernetesJob
        from flows.etl import etl

        deployment = Deployment.build_from_flow(flow=etl, name="k8s", infrastructure=KubernetesJob(namespace="etl"))

        if __name__ == "__main__":
            deployment.apply()
        """)
    result = convert(path)
    assert result.manifest["environments"]["prod"]["work_pool"] == {"name": "default", "type": "kubernetes"}
    assert result.manifest["deployments"][0]["job_variables"] == {"namespace": "etl"}
    assert ("5:14: no work queue: Prefect 2 put this deployment in the work queue 'default', which becomes the work "
            "pool 'default' of type kubernetes: in Prefect 3 a worker polls a work pool (create it, or name the pool "
            "your worker polls) [import-agent]") in messages(result)


def test_a_prefect_1_flow_imported_from_its_module_is_written_where_it_is_made(tmp_path):
    # a register script (or a cloud wrapper the CLI registers) that sets a run config on a flow of another module
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "fetch.py").write_text('from prefect import Flow\n\nwith Flow("fetch") as flow:\n    pass\n')
    (tmp_path / "flows" / "train.py").write_text('from prefect import Flow\n\nwith Flow("train") as flow:\n    pass\n')
    registers = script(tmp_path, """\
        from prefect.run_configs import ECSRun
        from flows.fetch import flow

        flow.run_config = ECSRun(labels=["prod"], image="acme/fetch:1")
        flow.register(project_name="etl")
        """, name="register.py")
    cli = script(tmp_path, """\
        from prefect.run_configs import ECSRun
        from flows.train import flow

        flow.run_config = ECSRun(labels=["prod"])
        """, name="train_cloud.py")
    result = convert(registers)
    (deployment,) = result.manifest["deployments"]
    assert (deployment["entrypoint"], deployment["job_variables"]) == ("flows/fetch.py:fetch", {"image": "acme/fetch:1"})
    assert any(w.startswith("5:1: a Prefect 1 flow (`Flow(...)`) is written in Prefect 3 as a function decorated with "
                            "@flow: the manifest names 'fetch' in flows/fetch.py") for w in messages(result))
    result = convert(cli)
    assert [d["entrypoint"] for d in result.manifest["deployments"]] == ["flows/train.py:train"]
    assert any(w.startswith("1:1: flow 'train' is not registered in this file") for w in messages(result))


def test_flows_reached_through_a_module_of_the_package_and_named_after_the_flow(tmp_path):
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "__init__.py").write_text("")
    (tmp_path / "pipelines" / "jobs.py").write_text(
        "from prefect import flow\n\n\n@flow(name='nightly-load')\ndef load():\n    pass\n")
    path = script(tmp_path, """\
        import pipelines.jobs as aliased
        from pipelines import jobs

        for flow_obj in [jobs.load, aliased.load]:
            flow_obj.deploy(name=f"{flow_obj.name}-{flow_obj.fn.__name__}", work_pool_name="p", image="i:1",
                            build=False)
        """)
    result = convert(path)
    assert [(d["name"], d["entrypoint"]) for d in result.manifest["deployments"]] == [
        ("nightly-load-load", "pipelines/jobs.py:load")]
    assert not any(w.rule == "import-unknown" for w in result.warnings), messages(result)


def test_deployments_collected_with_append_for_a_serve_of_the_teams_own_wrappers(tmp_path):
    # the team wraps Prefect's @flow and serve() in a library of its own; the deployments are gathered in a list
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "__init__.py").write_text("from .report import report\n\nFLOWS = [report]\n")
    (tmp_path / "jobs" / "report.py").write_text(
        "from ourlib import team_flow\n\n\n@team_flow(retries=2)\ndef report():\n    pass\n")
    path = script(tmp_path, """\
        from ourlib.prefect import serve
        from flows.etl import etl
        from jobs import FLOWS, report

        deployments = [etl.to_deployment(name="etl")]
        for flow in FLOWS:
            deployments.append(flow.to_deployment(name="report", cron="0 5 * * *"))
        deployments.extend([report.to_deployment(name="report-adhoc")])
        serve(*deployments)
        """)
    result = convert(path)
    assert [(d["name"], d["entrypoint"]) for d in result.manifest["deployments"]] == [
        ("etl", "flows/etl.py:etl"), ("report", "jobs/report.py:report"), ("report-adhoc", "jobs/report.py:report")]
    assert result.manifest["deployments"][1]["schedules"] == [{"cron": "0 5 * * *"}]
    warnings = messages(result)
    assert ("7:24: 'report' is decorated with @team_flow, not Prefect's @flow; it is taken as the flow 'report' because "
            ".to_deployment(...) is called on it (check the flow's name: @team_flow may give it another) "
            "[import-flow]") in warnings
    assert "9:1: 'ourlib.prefect.serve' is taken as Prefect's serve(): it is given deployments [import-flow]" in warnings


def test_loops_over_enumerate_zip_and_range_of_written_lists(tmp_path):
    path = script(tmp_path, """\
        from flows.etl import etl

        POOLS = ["small", "large"]
        for i, (pool, size) in enumerate(zip(POOLS, [1, 4]), start=1):
            etl.deploy(name=f"etl-{i}", work_pool_name=pool, image="i:1", build=False, job_variables={"cpu": size})
        for shard in range(2):
            etl.deploy(name=f"shard-{shard}", work_pool_name="small", image="i:1", build=False,
                       parameters={"day": str(shard)})
        """)
    result = convert(path)
    assert [(d["name"], d["work_pool"], d.get("job_variables", {}).get("cpu")) for d in
            result.manifest["deployments"]] == [("etl-1", "small", 1), ("etl-2", "large", 4), ("shard-0", "small", None),
                                                ("shard-1", "small", None)]
    assert not [w for w in result.warnings if w.rule == "import-unknown"], messages(result)


def test_f_strings_with_a_small_format_spec_are_formatted(tmp_path):
    path = script(tmp_path, """\
        from prefect import serve
        from flows.etl import etl

        serve(*[etl.to_deployment(name=f"shard-{i:02d}", parameters={"day": f"{i / 4:.2f}"}) for i in range(2)])
        """)
    result = convert(path)
    assert [(d["name"], d["parameters"]) for d in result.manifest["deployments"]] == [
        ("shard-00", {"day": "0.00"}), ("shard-01", {"day": "0.25"})]


def test_a_warning_inside_a_module_the_script_imports_names_that_module(tmp_path):
    (tmp_path / "registration.py").write_text(textwrap.dedent("""\
        import os
        from flows.etl import etl


        def work():
            etl.deploy("etl", work_pool_name=os.environ["POOL"].lower(), image="i:1", build=False)
        """))
    path = script(tmp_path, "from registration import work\n\nwork()\n", name="worker.py")
    result = convert(path)
    assert [d["name"] for d in result.manifest["deployments"]] == ["etl"]
    (warning,) = [w for w in result.warnings if w.rule == "import-unknown"]
    assert (Path(warning.file).name, warning.line) == ("registration.py", 6), warning
