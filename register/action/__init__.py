"""The GitHub Action's glue, between action.yml and the engine.

- `launcher`: run by the composite action with the runner's own python3 (standard library only,
  before any venv exists): picks the runtime, prepares the registrar and starts it;
- `entry`: the registrar's entry (entrypoint.py): the inputs onto the engine's command line;
- `inputs`: the inputs, their names and defaults read from action.yml;
- `masking`: which values are secrets, masked before anything is printed (standard library only).
"""
