"""The pets's migrations build exactly the tables its models declare (and the bus's), on every backend."""

from pawgle.common.testing.migrations import assert_migrations_match_models


def test_migrations_produce_exactly_the_models(database_url: str) -> None:
    assert_migrations_match_models("pawgle.pets", database_url)
