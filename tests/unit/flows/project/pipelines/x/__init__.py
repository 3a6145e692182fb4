from pipelines.x.constants import FALLBACK as DEFAULT_SOURCE
