"""The plan engine: resource kinds, each declared once (register/kinds/), planned and applied together.

A kind says how its things are read in bulk, compared, written, deleted and owned (`Kind`); the engine
knows none of their fields. One plan spans every kind in dependency order (what a deployment names
before the deployment, deletions last and in reverse), under one lease, with one report and one exit code.
Deployments with their automations are the first kind (register/plan.py and register/apply.py hold
their planning and writing); variables the second (register/kinds/variable.py).
"""
