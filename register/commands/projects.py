"""Several manifests in one run: each its own project (paths relative to its own folder, its own image,
its own lease), all of them checked before anything is written anywhere, then planned and applied one
after the other into one report.

    flow-register deploy -e dev -f 'pipelines/*/flows.yaml'        # or -f a.yaml -f b.yaml, or -f a.yaml,b.yaml
"""

from __future__ import annotations

import dataclasses
import glob
from pathlib import Path

from register.problems import Exit, Invalid, Problem, UsageError


def expand(given: list[str]) -> tuple[list[str], bool]:
    """The manifests named by `given` (paths, comma lists, globs such as 'pipelines/*/flows.yaml'), in the
    order given, globs sorted, each once; and whether several were asked for (a glob, a list, -f twice:
    the run then reports by project, even when one matched). A glob that matches nothing is a mistake."""
    found: list[str] = []
    many = False
    for value in given:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            many = many or len(found) > 0 or glob.has_magic(item)
            if glob.has_magic(item):
                matches = sorted(m for m in glob.glob(item, recursive=True) if Path(m).is_file())
                if not matches:
                    raise UsageError(f"'{item}' matches no manifest file (from {Path.cwd()})")
                found += matches
            else:
                found.append(item)
    unique = list(dict.fromkeys(str(Path(p)) for p in found))
    if not unique:
        raise UsageError("no manifest given")
    return unique, many or len(unique) > 1


def _same_project(manifests) -> list[Problem]:
    """Two manifests of one project would prune each other's deployments and share one lease."""
    seen: dict[str, str] = {}
    problems = []
    for m in manifests:
        if not isinstance(m.data, dict) or not isinstance(m.data.get("project"), str):
            continue
        if m.project in seen:
            problems.append(m.source.problem(("project",), f"project '{m.project}' is also the project of "
                                                           f"{seen[m.project]}; give each manifest a project of its own",
                                             "project-twice"))
        seen.setdefault(m.project, str(m.path))
    return problems


def validate(paths: list[str], environment: str | None, settings, output: str) -> int:
    """`validate` of each manifest; one JSON document for them all."""
    import json

    from register.manifest import load_manifest
    from register.report.problems import print_problems

    manifests = [load_manifest(p, environment, environ=settings.environ) for p in paths]
    twice = _same_project(manifests)
    problems = [p for m in manifests for p in m.problems] + twice
    if output == "json":
        print(json.dumps({"valid": not any(p.severity == "error" for p in problems), "manifests": [
            {"manifest": str(m.path), "valid": not m.errors(), "problems": [p.as_dict() for p in m.problems]}
            for m in manifests], "problems": [p.as_dict() for p in twice]}, indent=2))
    print_problems(sorted(problems), excerpts=output == "text")
    if any(p.severity == "error" for p in problems):
        return Exit.INVALID
    if output == "text":
        for m in manifests:
            count = len(m.data["deployments"])
            envs = [environment] if environment else m.environments
            print(f"{m.path}: valid (project {m.project}: {count} deployment{'s' * (count != 1)}; "
                  f"environments: {', '.join(envs)})")
    return Exit.OK


def _check_all(options, paths: list[str], settings) -> None:
    """Every mistake of every manifest before any write: each manifest as one deploy checks it (offline,
    then against the server, then its image settings), without its lease and writing nothing."""
    from register.commands import deploy
    from register import image as images
    from register.report.reporters import Reporter
    from register.server import Server, ServerError, connection_from_environment

    quiet = Reporter()
    problems: list[Problem] = []
    loaded_all = []
    for path in paths:
        each = dataclasses.replace(options, manifest=path)
        try:
            loaded = deploy.load(each, settings, quiet)
        except Invalid as invalid:
            problems += invalid.problems
            continue
        loaded_all.append(loaded)
        if loaded.broken:
            problems += deploy._broken(loaded, settings, quiet, options.environment).problems
            continue
        try:
            images.offline(loaded.manifest, options.environment)
        except Invalid as invalid:
            problems += invalid.problems
        try:
            with Server(connection_from_environment(settings.environ)) as server:
                deploy.check(loaded, deploy.read_server(server, loaded), server, options.environment)
        except Invalid as invalid:
            problems += invalid.problems
        except ServerError:
            pass  # the deploy of that project tells it, with its own exit code
    problems += _same_project([loaded.manifest for loaded in loaded_all])
    if any(p.severity == "error" for p in problems):
        raise Invalid(sorted(set(problems)))


def run(options, paths: list[str], settings, output: str) -> int:
    """plan or deploy each manifest; the exit code is the first failure's, as for one manifest."""
    from register.commands import deploy
    from register.problems import Detailed
    from register.report.projects import Projects

    for flag, value in (("--only", options.overrides.only), ("--smoke", options.smoke)):
        if value:
            raise UsageError(f"{flag} names deployments of one manifest; give one manifest with it")
    _check_all(options, paths, settings)
    reporter = Projects(output, settings, comment=options.comment)
    each = dataclasses.replace(options, comment=False, detailed_exitcode=False)
    worst = Exit.OK
    changes = False
    for path in paths:
        project = _project_name(path)
        if worst != Exit.OK:
            reporter.skipped(path, project, "not applied: an earlier project failed")
            continue
        reporter.start(path, project)
        try:
            code = deploy.run(dataclasses.replace(each, manifest=path), settings, reporter)
        except Invalid as invalid:  # found only now (a file changed since the check): this one is not written
            from register.report.problems import print_problems

            print_problems(invalid.problems)
            reporter.parts[-1].error = "invalid: " + "; ".join(str(p) for p in invalid.problems[:3])
            code = Exit.INVALID
        part = reporter.parts[-1]
        changes = changes or bool(part.outcome and part.outcome.plan.changes_anything)
        if code != Exit.OK:
            worst = Exit(code)
    reporter.close(options.environment)
    if options.detailed_exitcode and worst == Exit.OK and changes:
        return Detailed.CHANGES
    return worst


def _project_name(path: str) -> str:
    from register.manifest.source import load

    data = load(Path(path), {}).data
    name = data.get("project") if isinstance(data, dict) else None
    return name if isinstance(name, str) else Path(path).resolve().parent.name
