"""Re-exports with `import *`, as some repositories do."""
from pipelines.x.constants import *  # noqa: F403
from datetime import *  # noqa: F403

EVERYTHING = True
