"""What the commands do beyond reading a manifest: deploy's stages (deploy.py) and what runs beside them
(smoke runs, deploy history), render, rollback, move, several projects at once and `changed`."""
