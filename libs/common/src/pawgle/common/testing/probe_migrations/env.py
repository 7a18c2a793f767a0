from pawgle.common.migrations import run_migrations
from pawgle.common.testing import probe  # noqa: F401  (registers the probe table)

run_migrations()
