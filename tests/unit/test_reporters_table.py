"""Output formats are declared once (reporters.FORMATS): the CLI's --output of every command and the action's
log follow it, and several reporters as one hand every event on without a list of events of their own."""

from __future__ import annotations

import argparse

import pytest

from register.action.inputs import command_line, read_inputs
from register.cli import build_parser
from register.report import reporters
from register.report.reporters import FORMATS, FOR_PEOPLE, Reporter, Reporters


def _commands_with_output():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        for action in command._actions:
            if "--output" in action.option_strings and action.choices is not None:
                yield name, command, action


def test_every_commands_output_choices_are_the_formats_table():
    found = {name: action for name, _, action in _commands_with_output()}
    assert {"validate", "plan", "deploy", "destroy", "changed"} <= set(found)
    for name, action in found.items():
        assert list(action.choices) == list(FORMATS), name
        assert action.default in FORMATS, name


def test_a_new_format_is_one_entry_of_the_table(monkeypatch, capsys):
    class Quiet(Reporter):
        help = "nothing at all"

    monkeypatch.setitem(FORMATS, "quiet", Quiet)
    for name, command, action in _commands_with_output():
        assert "quiet" in action.choices, name
    with pytest.raises(SystemExit):
        build_parser().parse_args(["plan", "--help"])
    assert "quiet: nothing at all" in capsys.readouterr().out


def test_the_action_logs_in_the_format_for_people():
    inputs = read_inputs({"INPUT_ENVIRONMENT": "dev", "INPUT_PREFECT_API_URL": "http://127.0.0.1:9/api"})
    argv = command_line(inputs)
    assert argv[argv.index("--output") + 1] == FOR_PEOPLE in FORMATS


def test_several_reporters_hand_on_every_event_of_a_reporter():
    seen = []

    class Recording(Reporter):
        pass

    for event in reporters.EVENTS:
        if event != "phase":
            setattr(Recording, event, lambda self, *args, _event=event: seen.append((self.name, _event, args)))
    first, second = Recording(), Recording()
    first.name, second.name = "first", "second"
    both = Reporters(first, second)
    events = [e for e in reporters.EVENTS if e != "phase"]
    assert {"problems", "secrets", "note", "output", "planned", "step", "finished", "failed"} <= set(events)
    for event in events:
        getattr(both, event)(f"{event}-argument")
    assert seen == [(who, event, (f"{event}-argument",)) for event in events for who in ("first", "second")]
