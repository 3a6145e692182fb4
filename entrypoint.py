#!/usr/bin/env python3
"""The registrar image's entry point, and what register/action/launcher.py runs for the composite
action: the inputs (INPUT_* variables) onto `flow-register deploy`; see register/action/entry.py."""

import sys

from register.action.entry import run

if __name__ == "__main__":
    sys.exit(run())
