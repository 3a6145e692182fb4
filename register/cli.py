"""`flow-register`: the same engine CI runs, on the command line.

    flow-register validate [-f flows.yaml] [--environment ENV]
    flow-register render   --environment ENV
    flow-register plan     --environment ENV
    flow-register deploy   --environment ENV [--dry-run] [--prune] [--work-pool P] [--cpu C] [--memory M]
                           [--only a,b] [--output text|json] [--build auto|always|never] [--no-push]
                           [--smoke NAME[,NAME]] [--smoke-timeout SECONDS]
    flow-register import   [prefect.yaml] [-o flows.yaml] [--pool-type POOL=TYPE]
    flow-register import   deploy.py [-o flows.yaml]   (Python deployment code, read, never run)
    flow-register changed  --since REF [MANIFEST...]   (the manifests to deploy, as a GitHub Actions matrix)
    flow-register rollback --environment ENV [--to REVISION] [--list] [--dry-run] [--prune]
    flow-register move     --environment ENV [--from-project OLD] [--from-environment OLD] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import sys

from register.problems import Detailed, Exit, Invalid, UsageError
from register.settings import CONCURRENCY, Settings


class _Parser(argparse.ArgumentParser):
    detailed = False  # --detailed-exitcode is on the command line: every error exits 1

    def error(self, message):  # argparse exits 2 on usage errors too; keep its message, our format
        self.print_usage(sys.stderr)
        print(f"flow-register: error: {message}", file=sys.stderr)
        raise SystemExit(Detailed.ERROR if _Parser.detailed else Exit.USAGE)


def _manifest_args(parser: argparse.ArgumentParser, *, environment: str | None) -> None:
    parser.add_argument("-f", "--file", "--manifest", dest="file", action="append", metavar="MANIFEST",
                        help="the manifest (default: flows.yaml); repeat it, or give a comma list or a glob such as "
                             "'pipelines/*/flows.yaml', for several projects in one run")
    if environment == "required":
        parser.add_argument("-e", "--environment", required=True, help="the environment to resolve")
    else:
        parser.add_argument("-e", "--environment", help="check this environment only")


def _override_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-pool", help="register every deployment into this work pool")
    parser.add_argument("--cpu", help="cpu for every deployment: vCPU (0.5, 2) or millicores ('500m')")
    parser.add_argument("--memory", help="memory for every deployment: '512Mi', '2Gi', or MiB")
    parser.add_argument("--only", help="comma-separated deployment names (as written in the manifest)")


def _server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=_positive, default=CONCURRENCY, metavar="N",
                        help=f"writes in flight at once against the Prefect server (default {CONCURRENCY})")
    parser.add_argument("--lock-wait", type=float, default=600, metavar="SECONDS",
                        help="how long to wait for another deploy of this project and environment (default 600)")
    parser.add_argument("--account-id", metavar="ID",
                        help="a Prefect Cloud account's id, with --workspace-id instead of PREFECT_API_URL "
                             "(default: PREFECT_ACCOUNT_ID)")
    parser.add_argument("--workspace-id", metavar="ID",
                        help="a Prefect Cloud workspace's id, with --account-id (default: PREFECT_WORKSPACE_ID)")
    parser.add_argument("--requests-per-minute", type=_per_minute,
                        metavar="N", help="at most N requests a minute to the Prefect server, shared with production "
                                          "on a Cloud account; 0: no budget (default: FLOW_REGISTER_REQUESTS_PER_MINUTE, "
                                          "else 150 on Prefect Cloud, none on a self-hosted server)")


DETAILED_EXITCODE = "--detailed-exitcode"


def _detailed_exitcode_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(DETAILED_EXITCODE, action="store_true",
                        help=f"exit {Detailed.NO_CHANGES:d} when nothing would change, {Detailed.CHANGES:d} when "
                             f"something would, {Detailed.ERROR:d} on any error")


def _output_arg(parser: argparse.ArgumentParser, *, default: str | None = None, help: str | None = None) -> None:
    from register.report.reporters import FOR_PEOPLE, FORMATS, formats_help

    parser.add_argument("--output", choices=list(FORMATS), default=default or FOR_PEOPLE,
                        help=f"{help or formats_help()} (default {default or FOR_PEOPLE})")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="flow-register", description="Validate a flow manifest and register Prefect deployments.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    validate = commands.add_parser("validate", help="check the manifest offline and report every problem")
    _manifest_args(validate, environment="optional")
    _output_arg(validate)

    render = commands.add_parser("render", help="print one environment's resolved deployments as JSON (offline)")
    _manifest_args(render, environment="required")
    _override_args(render)

    for name, text in (("plan", "show what deploy would change, and change nothing"),
                       ("deploy", "build and push the image if needed, then register what changed")):
        command = commands.add_parser(name, help=text)
        _manifest_args(command, environment="required")
        _override_args(command)
        command.add_argument("--prune", action="store_true",
                             help="delete this project's deployments in this environment that the manifest no longer has")
        _output_arg(command)
        command.add_argument("--build", choices=["auto", "always", "never"], default="auto",
                             help="auto: build unless this environment's deployments already run the registry's "
                                  "image of the content tag")
        command.add_argument("--no-push", dest="push", action="store_false", help="build but do not push")
        command.add_argument("--image-tag", help="an extra tag for the image")
        command.add_argument("--preview", metavar="NAME",
                             help="register a preview (e.g. pr-123): names suffixed, its own ownership, paused schedules")
        command.add_argument("--preview-active", action="store_true",
                             help="keep a preview's schedules and triggers on (off by default)")
        command.add_argument("--comment", action="store_true",
                             help="write the plan as one comment on the pull request (GitHub Actions, GITHUB_TOKEN)")
        _server_args(command)
        if name == "deploy":
            command.add_argument("--dry-run", action="store_true", help="plan only; write nothing")
            command.add_argument("--smoke", action="append", metavar="NAMES",
                                 help="after applying, run these deployments once (comma-separated manifest names; "
                                      "over the environment's smoke list) and fail (exit 6) unless each is Completed")
            command.add_argument("--smoke-timeout", type=_seconds, metavar="SECONDS",
                                 help="how long a smoke run may take to end (default 600)")
        else:
            _detailed_exitcode_arg(command)

    destroy = commands.add_parser("destroy", help="delete a preview's deployments and their triggers")
    _manifest_args(destroy, environment="required")
    destroy.add_argument("--preview", metavar="NAME", required=True, help="the preview to delete, e.g. pr-123")
    destroy.add_argument("--dry-run", action="store_true", help="show what would be deleted; delete nothing")
    _output_arg(destroy)
    _server_args(destroy)

    rollback = commands.add_parser("rollback", help="put an environment back to what an earlier deploy registered "
                                                    "(planned like a deploy); --list shows the deploy history")
    _manifest_args(rollback, environment="required")
    rollback.add_argument("--to", metavar="REVISION",
                          help="a revision number from --list, or a commit (7 or more hex digits); default: the "
                               "revision before the newest")
    rollback.add_argument("--list", action="store_true", help="list the deploy history (when, commit, who, image)")
    rollback.add_argument("--dry-run", action="store_true", help="plan only; write nothing")
    rollback.add_argument("--prune", action="store_true",
                          help="delete this environment's deployments that the revision did not have")
    _detailed_exitcode_arg(rollback)
    _output_arg(rollback)
    _server_args(rollback)

    move = commands.add_parser("move", help="re-own deployments (and variables) of an old project or environment "
                                            "name under the manifest's, in place: same ids, runs and schedules")
    _manifest_args(move, environment="required")
    move.add_argument("--from-project", metavar="OLD", help="the project name they are owned by now "
                                                            "(default: the manifest's project)")
    move.add_argument("--from-environment", metavar="OLD", help="the environment name they are owned by now "
                                                                "(default: --environment)")
    move.add_argument("--dry-run", action="store_true", help="plan only; write nothing")
    _detailed_exitcode_arg(move)
    _output_arg(move)
    _server_args(move)

    imports = commands.add_parser("import", help="convert a prefect.yaml into a manifest; warn about what has no "
                                                 "equivalent, at its line")
    imports.add_argument("prefect_yaml", nargs="?", default="prefect.yaml", help="default: prefect.yaml")
    imports.add_argument("-o", "--output", help="write the manifest here, not to stdout: in the folder prefect "
                         "deploy runs in (prefect.yaml's, or the current one for --prefect-file)")
    imports.add_argument("-e", "--environment", default="prod", help="the one environment to declare (default prod)")
    imports.add_argument("--pool-type", action="append", metavar="POOL=TYPE",
                         help="a work pool's type, so cpu/memory become resources (repeat per pool)")

    changed = commands.add_parser("changed", help="which manifests' deployments or images changed since a git ref, "
                                                  "as JSON for a GitHub Actions matrix")
    changed.add_argument("manifests", nargs="*", metavar="MANIFEST",
                         help="manifests, comma lists or globs such as 'pipelines/*/flows.yaml' (default: flows.yaml)")
    changed.add_argument("-f", "--file", "--manifest", dest="file", action="append", metavar="MANIFEST",
                         help="a manifest, as the positional arguments")
    changed.add_argument("--since", required=True, metavar="REF",
                         help="the git ref to compare the working tree with, e.g. origin/main or the push's before")
    _output_arg(changed, default="json", help="json: the matrix; text: one manifest a line")
    return parser


def overrides_from(args):
    from register.manifest import Overrides

    only = [n.strip() for n in args.only.split(",") if n.strip()] if getattr(args, "only", None) else None
    return Overrides(work_pool=args.work_pool or None, cpu=args.cpu or None, memory=args.memory or None, only=only,
                     labels=getattr(args, "labels", None) or {})


def _validate(args, settings: Settings) -> int:
    from register.manifest import load_manifest
    from register.report.problems import print_problems

    manifest = load_manifest(args.file, args.environment, environ=settings.environ)
    if args.output == "json":
        print(json.dumps({"valid": not manifest.errors(), "problems": [p.as_dict() for p in manifest.problems]},
                         indent=2))
    print_problems(manifest.problems, excerpts=args.output == "text")
    if manifest.errors():
        return Exit.INVALID
    if args.output == "text":
        envs = [args.environment] if args.environment else manifest.environments
        count = len(manifest.data["deployments"])
        print(f"{args.file}: valid ({count} deployment{'s' * (count != 1)}; environments: {', '.join(envs)})")
    return Exit.OK


def _render(args, settings: Settings) -> int:
    from register.manifest import load_manifest
    from register.commands.render import render
    from register.report.problems import print_problems

    overrides = overrides_from(args)
    manifest = load_manifest(args.file, args.environment, overrides, environ=settings.environ)
    print_problems(manifest.problems)
    if manifest.errors():
        return Exit.INVALID
    print(json.dumps(render(manifest, args.environment, overrides, settings=settings), indent=2))
    return Exit.OK


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of 1 or more")
    return int(text)


def _per_minute(text: str) -> str:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of requests a minute (0: no budget)")
    return str(int(text))


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds above 0")
    return value


def _smoke_names(args) -> list[str] | None:
    given = getattr(args, "smoke", None)
    if not given:
        return None
    return [n.strip() for value in given for n in value.split(",") if n.strip()]


def _deploy(args, settings: Settings) -> int:
    from register.commands.deploy import run
    from register.report.reporters import choose

    return run(_options(args, settings), settings, choose(args.output, settings, comment=args.comment))


def _options(args, settings: Settings):
    from register.commands.deploy import DeployOptions

    return DeployOptions(
        manifest=args.file,
        environment=args.environment,
        overrides=overrides_from(args),
        dry_run=args.command == "plan" or args.dry_run,
        prune=args.prune,
        build=args.build,
        push=args.push,
        image_tag=args.image_tag,
        preview=args.preview,
        comment=args.comment,
        detailed_exitcode=getattr(args, "detailed_exitcode", False),
        concurrency=args.concurrency,
        lock_wait=args.lock_wait,
        preview_active=getattr(args, "preview_active", False),
        smoke=_smoke_names(args),
        smoke_timeout=getattr(args, "smoke_timeout", None),
    )


def _changed(args, settings: Settings) -> int:
    from register.commands import changed
    from register.commands.projects import expand
    from register.report import github

    paths = expand((args.manifests or []) + (args.file or []) or ["flows.yaml"])[0]
    found = changed.changed(paths, args.since, settings.environ)
    matrix = json.dumps(changed.matrix(found), separators=(",", ":"))
    for c in found:
        print(f"{github.visible(c.manifest)} ({github.visible(c.project)}): {github.visible(', '.join(c.why[:5]))}"
              f"{f' and {len(c.why) - 5} more' if len(c.why) > 5 else ''}", file=sys.stderr)
    print(f"{len(found)} of {len(paths)} manifest{'s' * (len(paths) != 1)} changed since {args.since}",
          file=sys.stderr)
    if args.output == "json":
        print(matrix)
    else:
        for c in found:
            print(c.manifest)
    github.set_outputs({"changed": matrix})
    return Exit.OK


def _import(args, settings: Settings) -> int:
    from register.importer import run

    if args.prefect_yaml.endswith(".py"):  # deployments written in Python (Prefect 1, 2 or 3)
        from register.importer import python

        return python.run(args.prefect_yaml, args.output, args.environment, settings.environ)
    return run(args.prefect_yaml, args.output, args.environment, args.pool_type, settings.environ)


def _one_manifest(args) -> str:
    from register.commands.projects import expand

    paths = expand(args.file or ["flows.yaml"])[0]
    if len(paths) != 1:
        raise UsageError(f"{args.command} takes one manifest; {len(paths)} were given ({', '.join(paths)})")
    return paths[0]


def _rollback(args, settings: Settings) -> int:
    from register.report.reporters import choose
    from register.commands.rollback import RollbackOptions, run

    labels = getattr(args, "labels", None) or {}
    return run(RollbackOptions(manifest=_one_manifest(args), environment=args.environment, to=args.to,
                               list=args.list, dry_run=args.dry_run, prune=args.prune,
                               detailed_exitcode=args.detailed_exitcode, concurrency=args.concurrency,
                               lock_wait=args.lock_wait, label=labels.get("rollback", "--to")),
               settings, choose(args.output, settings))


def _move(args, settings: Settings) -> int:
    from register.commands.move import MoveOptions, run
    from register.report.reporters import choose

    return run(MoveOptions(manifest=_one_manifest(args), environment=args.environment,
                           from_project=args.from_project, from_environment=args.from_environment,
                           dry_run=args.dry_run, detailed_exitcode=args.detailed_exitcode, lock_wait=args.lock_wait),
               settings, choose(args.output, settings))


def _destroy(args, settings: Settings) -> int:
    from register.commands.deploy import destroy
    from register.report.reporters import choose

    return destroy(args.file, args.environment, args.preview, settings, choose(args.output, settings),
                   dry_run=args.dry_run, lock_wait=args.lock_wait, concurrency=args.concurrency)


def _with_workspace(args, settings: Settings) -> Settings:
    """The settings, with --account-id and --workspace-id as PREFECT_ACCOUNT_ID and PREFECT_WORKSPACE_ID."""
    given = {name: value for name, value in (("PREFECT_ACCOUNT_ID", getattr(args, "account_id", None)),
                                             ("PREFECT_WORKSPACE_ID", getattr(args, "workspace_id", None)),
                                             ("FLOW_REGISTER_REQUESTS_PER_MINUTE",
                                              getattr(args, "requests_per_minute", None))) if value}
    return settings.with_variables(given)


def main(argv: list[str] | None = None, labels: dict[str, str] | None = None,
         settings: Settings | None = None) -> int:
    """`labels`: how the caller names the overrides in problems (the action: its inputs); flags by default.
    `settings`: what the run depends on outside its arguments (the action's entry builds them from its
    inputs); by default this process's environment, read here once."""
    from register.report import github

    settings = Settings.from_environ() if settings is None else settings
    github.use(settings.github)
    github.guard_output()  # under GitHub Actions, nothing printed from here on starts a workflow command
    argv = sys.argv[1:] if argv is None else argv
    _Parser.detailed = any(len(arg) > 4 and DETAILED_EXITCODE.startswith(arg) for arg in argv)  # or abbreviated
    args = build_parser().parse_args(argv)
    args.labels = labels
    code = _run(args, settings)
    if getattr(args, "detailed_exitcode", False):
        return int(Detailed.of(code))
    return int(code)


_SEVERAL = ("validate", "render", "plan", "deploy", "destroy")  # the commands that take -f


def _several(args, settings: Settings) -> int:
    """One manifest as always; several (repeated -f, a comma list, a glob) each as its own project."""
    from register.commands import projects

    paths, many = projects.expand(args.file or ["flows.yaml"])
    args.file = paths[0]
    if not many:
        handler = {"validate": _validate, "render": _render, "plan": _deploy, "deploy": _deploy, "destroy": _destroy}
        return handler[args.command](args, settings)
    if args.command == "validate":
        return projects.validate(paths, args.environment, settings, args.output)
    if args.command in ("render", "destroy"):
        raise UsageError(f"{args.command} takes one manifest; {len(paths)} were given ({', '.join(paths)})")
    return projects.run(_options(args, settings), paths, settings, args.output)


def _run(args, settings: Settings) -> int:
    handler = {"validate": _validate, "render": _render, "plan": _deploy, "deploy": _deploy, "destroy": _destroy,
               "import": _import, "changed": _changed, "rollback": _rollback, "move": _move}
    try:
        if args.command in _SEVERAL:
            return _several(args, _with_workspace(args, settings))
        return handler[args.command](args, _with_workspace(args, settings))
    except Invalid as invalid:
        from register.report.problems import print_problems

        print_problems(invalid.problems)
        return Exit.INVALID
    except UsageError as error:
        print(f"flow-register: error: {error}", file=sys.stderr)
        return Exit.USAGE
    except FileNotFoundError as error:
        print(f"flow-register: error: {error.strerror}: '{error.filename}'; give the manifest with -f/--file",
              file=sys.stderr)
        return Exit.USAGE


def entry() -> None:
    """The console script. Once the work is done and reported, skip the interpreter's teardown of the
    ~1,300 modules Prefect loads (0.14 s of a 1 s warm deploy): flush, close logging, and exit."""
    import logging
    import os

    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    entry()
