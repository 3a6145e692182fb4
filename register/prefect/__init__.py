"""Prefect's vocabulary, declared once: each deployment field (fields.py), the shapes of schedules,
triggers and job variables as the server keeps them (models.py), and each work pool type's rules (resources.py)."""
