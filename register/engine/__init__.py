"""The plan engine: resource kinds, each declared once (register/kinds/), planned and applied together.

A kind says how its things are read in bulk, compared, written, deleted and owned (`Kind`, kind.py); the
engine knows none of their fields. One plan spans every kind in dependency order (what a deployment names
before the deployment, deletions last and in reverse), under one lease, with one report and one exit code:
planner.py makes it, applier.py writes it. Deployments with their automations are a kind
(register/kinds/deployment.py); variables, blocks and Cloud webhooks are others (register/kinds/variable.py,
block.py, webhook.py).
"""
