"""prepare(): when it builds, pushes, logs in, or does nothing, with Docker and the registry stood in for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import register.image as image_stage
from support import stages
from register.image import registries
from register.manifest import load_manifest
from register.report import github
from register.problems import Invalid
from support.examples import example_copy

REPOSITORY = "registry.example:5000/sales-etl"
PUSHED = "sha256:" + "b" * 64
EXISTING = "sha256:" + "e" * 64


class FakeRegistry(registries.Registry):
    """Has the tags in `tags`; after a push seen by the fake docker, has the pushed tags too."""

    def __init__(self, repository, settings, secret, docker, tags=None):
        super().__init__(repository, settings, secret)
        self.docker = docker
        self.tags = dict(tags or {})
        self.added = []

    def digest(self, tag):
        for argv in self.docker.commands():
            if (argv[:1] == ["push"] or "--push" in argv) and any(a.endswith(f":{tag}") for a in argv):
                return PUSHED
        return self.tags.get(tag)

    def add_tag(self, digest, tag):
        self.added.append((digest, tag))
        self.tags[tag] = digest


@pytest.fixture
def manifest_path(tmp_path) -> Path:
    return example_copy(tmp_path, REPOSITORY)


@pytest.fixture
def registry(fake_docker, monkeypatch):
    holder = {}

    def for_repository(repository, settings, secret):
        holder["registry"] = FakeRegistry(repository, settings, secret, fake_docker, holder.get("tags"))
        return holder["registry"]

    monkeypatch.setattr(registries, "for_repository", for_repository)

    class Handle:
        def has(self, **tags):
            holder["tags"] = {k.replace("_", "-"): v for k, v in tags.items()}

        @property
        def last(self) -> FakeRegistry:
            return holder["registry"]

    return Handle()


def content_tag_of(path: Path) -> str:
    return stages.prepare(load_manifest(path), "dev", dry_run=True).content_tag


RECORDED = [f"{REPOSITORY}@{EXISTING}"]  # what the environment's deployments run, as deploy reads the server


def test_a_tag_already_in_the_registry_and_run_by_the_environment_means_no_docker_at_all(manifest_path, registry,
                                                                                         fake_docker, capsys):
    registry.has(**{content_tag_of(manifest_path).replace("-", "_"): EXISTING})
    image = stages.prepare(load_manifest(manifest_path), "dev", recorded=RECORDED)
    assert image.reference == f"{REPOSITORY}@{EXISTING}"
    assert (image.built, image.pushed, image.exists) == (False, False, True)
    assert image.content_tag.startswith("ct-")
    assert fake_docker.calls == []
    assert "which environment 'dev''s deployments of this project already run" in capsys.readouterr().err


def test_a_tag_in_the_registry_that_no_deploy_recorded_is_built_again(manifest_path, registry, fake_docker, capsys):
    registry.has(**{content_tag_of(manifest_path).replace("-", "_"): EXISTING})
    recorded = [f"{REPOSITORY}@sha256:{'1' * 64}", f"other/repo@{EXISTING}"]
    planned = stages.prepare(load_manifest(manifest_path), "dev", dry_run=True, recorded=recorded)
    assert planned.reference == f"{REPOSITORY}:{planned.content_tag}"  # the plan: would build
    image = stages.prepare(load_manifest(manifest_path), "dev", recorded=recorded)
    assert image.built and image.reference == f"{REPOSITORY}@{PUSHED}"
    assert "no deploy of project 'sales-etl' in environment 'dev' registered that image" in capsys.readouterr().err


def test_a_dry_run_looks_up_the_tag_and_runs_no_docker(manifest_path, registry, fake_docker):
    image = stages.prepare(load_manifest(manifest_path), "dev", dry_run=True)
    assert image.reference == f"{REPOSITORY}:{image.content_tag}"
    assert (image.built, image.pushed, image.exists) == (False, False, False)
    assert fake_docker.calls == []


def test_build_never_without_the_tag_is_an_error_on_the_repository_line(manifest_path, registry, fake_docker):
    with pytest.raises(Invalid) as invalid:
        stages.prepare(load_manifest(manifest_path), "dev", build="never")
    [problem] = invalid.value.problems
    assert problem.rule == "image-missing"
    assert problem.line == 6  # `repository:` in the example's flows.yaml
    assert "build is 'never'" in problem.message
    assert fake_docker.calls == []


def test_a_missing_tag_is_built_once_with_the_classic_builder_and_pushed(manifest_path, registry, fake_docker):
    image = stages.prepare(load_manifest(manifest_path), "dev")
    tag = image.content_tag
    assert image.reference == f"{REPOSITORY}@{PUSHED}"
    assert (image.built, image.pushed, image.builder) == (True, True, "classic")
    builds = [c for c in fake_docker.calls if c["argv"][:1] == ["build"]]
    assert len(builds) == 1 and builds[0]["buildkit"] == "0"
    argv = builds[0]["argv"]
    assert argv[argv.index("--tag") + 1] == f"{REPOSITORY}:{tag}"
    assert argv[argv.index("--file") + 1] == str(manifest_path.parent / "Dockerfile")
    assert argv[-1] == str(manifest_path.parent)
    assert [c for c in fake_docker.commands() if c[:1] == ["push"]] == [["push", f"{REPOSITORY}:{tag}"]]


def test_buildx_builds_and_pushes_in_one_step(manifest_path, registry, fake_docker, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_BUILDX", "1")
    image = stages.prepare(load_manifest(manifest_path), "dev", image_tag="v1.2")
    assert image.builder == "buildx" and image.reference == f"{REPOSITORY}@{PUSHED}"
    [build] = [c for c in fake_docker.commands() if c[:2] == ["buildx", "build"]]
    assert "--push" in build and "--load" not in build
    assert f"{REPOSITORY}:v1.2" in build and f"{REPOSITORY}:{image.content_tag}" in build
    assert "--cache-from" not in build  # not under GitHub Actions
    assert not [c for c in fake_docker.commands() if c[:1] == ["push"]]


def test_buildx_uses_the_github_actions_cache_when_the_runtime_exposes_it(manifest_path, registry, fake_docker,
                                                                          monkeypatch, capsys):
    monkeypatch.setenv("FAKE_DOCKER_BUILDX", "1")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("ACTIONS_RUNTIME_TOKEN", "runtime-token")
    monkeypatch.setenv("ACTIONS_CACHE_URL", "https://cache.example/")
    stages.prepare(load_manifest(manifest_path), "dev")
    [build] = [c for c in fake_docker.commands() if c[:2] == ["buildx", "build"]]
    assert build[build.index("--cache-from") + 1] == "type=gha,scope=flow-register-sales-etl"
    assert build[build.index("--cache-to") + 1] == "type=gha,mode=max,scope=flow-register-sales-etl"
    err = capsys.readouterr().err
    assert err.startswith("::group::Image ") and "::endgroup::" in err


def test_credentials_log_docker_in_first_with_the_password_on_stdin(manifest_path, registry, fake_docker,
                                                                     monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("REGISTRY_HOST", "registry.example:5000")
    monkeypatch.setenv("REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("REGISTRY_PASSWORD", "ci-secret-pw")
    monkeypatch.setattr(github, "_masked", set())  # a mask is written once a process: not left from another test
    stages.prepare(load_manifest(manifest_path), "dev")
    commands = fake_docker.commands()
    login = next(i for i, c in enumerate(commands) if c[:1] == ["login"])
    build = next(i for i, c in enumerate(commands) if c[:1] == ["build"])
    assert login < build
    assert fake_docker.calls[login]["stdin"].strip() == "ci-secret-pw"
    assert "ci-secret-pw" not in json.dumps(commands)
    out, err = capsys.readouterr()
    assert "::add-mask::ci-secret-pw" in err.splitlines()  # on stderr: stdout may be JSON
    assert "ci-secret-pw" not in out + err.replace("::add-mask::ci-secret-pw", "")


def test_push_false_builds_and_runs_the_local_tag(manifest_path, registry, fake_docker):
    image = stages.prepare(load_manifest(manifest_path), "dev", push=False)
    assert image.reference == f"{REPOSITORY}:{image.content_tag}"
    assert (image.built, image.pushed) == (True, False)
    assert not [c for c in fake_docker.commands() if c[:1] == ["push"]]


def test_build_always_rebuilds_a_tag_the_registry_has(manifest_path, registry, fake_docker):
    registry.has(**{content_tag_of(manifest_path).replace("-", "_"): EXISTING})
    image = stages.prepare(load_manifest(manifest_path), "dev", build="always")
    assert image.built and image.reference == f"{REPOSITORY}@{PUSHED}"


def test_an_extra_tag_on_an_unchanged_image_is_added_in_the_registry(manifest_path, registry, fake_docker):
    registry.has(**{content_tag_of(manifest_path).replace("-", "_"): EXISTING})
    image = stages.prepare(load_manifest(manifest_path), "dev", image_tag="v2", recorded=RECORDED)
    assert registry.last.added == [(EXISTING, "v2")]
    assert (image.built, image.pushed, image.tags) == (False, False, ["v2"])
    assert fake_docker.calls == []


def test_the_git_commit_tags_the_image_in_ci(manifest_path, registry, fake_docker, monkeypatch):
    monkeypatch.setenv("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
    image = stages.prepare(load_manifest(manifest_path), "dev")
    [build] = [c for c in fake_docker.commands() if c[:1] == ["build"]]
    assert f"{REPOSITORY}:0123456789abcdef0123456789abcdef01234567" in build
    assert image.tags == [image.content_tag, "0123456789abcdef0123456789abcdef01234567"]


def test_dockerfile_auto_is_built_from_a_folder_of_its_own_and_shown_in_the_log(manifest_path, registry,
                                                                               fake_docker, capsys):
    text = manifest_path.read_text().replace("dockerfile: Dockerfile", "dockerfile: auto\n  base: acme/base:1")
    manifest_path.write_text(text)
    first = stages.prepare(load_manifest(manifest_path), "dev")
    assert "FROM acme/base:1" in first.dockerfile and "\n  FROM acme/base:1" in capsys.readouterr().err
    [build] = [c for c in fake_docker.commands() if c[:1] == ["build"]]
    assert not build[build.index("--file") + 1].startswith(str(manifest_path.parent))
    assert not build[-1].startswith(str(manifest_path.parent))
    assert not (manifest_path.parent / ".flow-register").exists()  # nothing written into the repository
    assert content_tag_of(manifest_path) == first.content_tag


def test_a_manifest_without_image_prepares_nothing(manifest_path, registry, fake_docker):
    text = manifest_path.read_text()
    start = text.index("image:\n")
    end = text.index("defaults:")
    manifest_path.write_text(text[:start] + text[end:])
    assert stages.prepare(load_manifest(manifest_path), "dev") == image_stage.Image()
    assert fake_docker.calls == []


def test_a_missing_dockerfile_is_an_error_before_anything_runs(manifest_path, registry, fake_docker):
    (manifest_path.parent / "Dockerfile").unlink()
    with pytest.raises(Invalid, match="Dockerfile 'Dockerfile' does not exist"):
        stages.prepare(load_manifest(manifest_path), "dev")
    assert fake_docker.calls == []


def test_the_offline_tag_is_the_one_deploy_uses(manifest_path, registry, fake_docker):
    offline = image_stage.offline(load_manifest(manifest_path), "dev")
    assert offline.content_tag == content_tag_of(manifest_path)
    assert offline.reference == f"{REPOSITORY}:{offline.content_tag}"
    assert fake_docker.calls == []


def test_an_environment_image_override_is_where_its_problems_point(manifest_path, registry, fake_docker):
    text = manifest_path.read_text().replace(
        "    work_pool: {name: dev-docker, type: docker}\n",
        "    work_pool: {name: dev-docker, type: docker}\n    image: {dockerfile: missing/Dockerfile}\n", 1)
    manifest_path.write_text(text)
    with pytest.raises(Invalid) as invalid:
        stages.prepare(load_manifest(manifest_path), "dev")
    [problem] = invalid.value.problems
    assert problem.rule == "image-dockerfile"
    assert text.splitlines()[problem.line - 1].strip().startswith("image: {dockerfile: missing/Dockerfile}")


def test_a_dry_run_plans_without_a_reachable_registry(tmp_path, capsys):
    """A pull request's plan often has no registry credentials: the plan still comes, and says so."""
    manifest = load_manifest(example_copy(tmp_path, "127.0.0.1:9/sales-etl"))
    image = stages.prepare(manifest, "dev", dry_run=True)
    assert image.reference == f"127.0.0.1:9/sales-etl:{image.content_tag}"
    assert (image.built, image.pushed, image.exists) == (False, False, False)
    assert "the plan assumes it is not there, so deploy would build and push it" in capsys.readouterr().err


def test_a_real_deploy_still_fails_on_an_unreachable_registry(tmp_path):
    manifest = load_manifest(example_copy(tmp_path, "127.0.0.1:9/sales-etl"))
    with pytest.raises(image_stage.ImageError, match="cannot reach the registry 127.0.0.1:9"):
        stages.prepare(manifest, "dev")


def test_the_stage_prints_nothing_itself_and_tells_each_event_to_the_reporter(manifest_path, registry, fake_docker,
                                                                             capsys, monkeypatch):
    import contextlib

    from register.report.reporters import Reporter
    from register.settings import Settings

    told = []

    class Recording(Reporter):
        @contextlib.contextmanager
        def phase(self, title):
            told.append(("phase", title))
            yield

        def note(self, text):
            told.append(("note", text))

        def output(self, text):
            told.append(("output", text))

        def secrets(self, secrets):
            told.append(("secrets", secrets))

    settings = Settings.from_environ({"PATH": __import__("os").environ["PATH"], "FAKE_DOCKER_LOG": str(fake_docker.log),
                                      "REGISTRY_HOST": "registry.example:5000", "REGISTRY_USERNAME": "ci",
                                      "REGISTRY_PASSWORD": "settings-pw"})
    image = image_stage.prepare(load_manifest(manifest_path), "dev", settings=settings, events=Recording())
    assert image.built and image.pushed
    assert capsys.readouterr() == ("", "")  # the reporter prints; this one printed nothing
    assert told[0] == ("phase", f"Image {REPOSITORY}:{image.content_tag}")
    assert ("secrets", ["settings-pw"]) in told  # from the settings given, before the login that uses it
    assert [text for kind, text in told if kind == "note"] == [f"image: {note}" for note in image.notes]
    assert any(c["argv"][:1] == ["login"] and c["stdin"].strip() == "settings-pw" for c in fake_docker.calls)
