"""--shard K/N splits the catalog by topology: every topology in exactly one shard."""

from __future__ import annotations

import pytest

from lab.errors import LabError
from lab.sharding import in_shard, parse_shard
from lab.topology import catalog


def test_shards_partition_the_catalog_and_every_topology_lands_in_exactly_one():
    for count in (1, 2, 3, 4):
        owners = {name: [k for k in range(1, count + 1) if in_shard(name, (k, count))] for name in catalog()}
        assert all(len(shards) == 1 for shards in owners.values()), owners


def test_a_shard_that_is_not_k_of_n_is_refused():
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "x", "1/0", ""):
        with pytest.raises(LabError):
            parse_shard(bad)
