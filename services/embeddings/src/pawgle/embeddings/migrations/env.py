from pawgle.common.migrations import run_migrations
from pawgle.embeddings import models  # noqa: F401  (registers the embeddings tables)

run_migrations()
