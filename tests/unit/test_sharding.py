"""--shard K/N splits the catalog by topology: every topology in exactly one shard."""

from __future__ import annotations

import re
import subprocess
import sys

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


def test_under_loadgroup_a_topologys_parametrized_tests_run_in_its_group_on_one_worker(tmp_path):
    # xdist reads the xdist_group marker into the node id in its own collection hook: the
    # lab's marker must be there first, or "one worker per topology" silently never happens.
    (tmp_path / "test_grouped.py").write_text(
        "import pytest\n"
        "@pytest.mark.parametrize('name', ['nginx-https', 'apache-https'])\n"
        "def test_one(name): pass\n"
        "@pytest.mark.parametrize('name', ['nginx-https'])\n"
        "def test_two(name): pass\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup",
                             "-v", "-p", "no:cacheprovider", str(tmp_path / "test_grouped.py")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    placed = re.findall(r"\[(gw\d)\] \[[ \d]+%\] PASSED \S+?::(test_\w+\[nginx-https\])@nginx-https", result.stdout)
    assert len(placed) == 2 and len({worker for worker, _ in placed}) == 1, result.stdout
