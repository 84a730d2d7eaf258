"""One local SLURM of cluster.NODES nodes for every test in tests/slurm: started once (or found running;
then it stays up), stopped at the end. Where SLURM cannot start (not installed, not root) the tests
skip with the reason, except under CI=true, where that is a failure."""
import os
import sys

import pytest

from tests.slurm import cluster


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    """The environment sbatch and the jobs need."""
    started, why = cluster.start_cluster()
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    # The jobs run this interpreter (sbatch passes the environment on), train on fixture data, and stage
    # it into their own $TMPDIR, so a test can see that nothing is left there.
    path = f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"
    scratch = tmp_path_factory.mktemp("scratch")
    yield {**os.environ, "SLURM_CONF": f"{cluster.SLURM_DIR}/slurm.conf", "PATH": path, "TMPDIR": str(scratch)}
    if started:
        cluster.stop_cluster()


@pytest.fixture
def scratch(env):
    """The jobs' $TMPDIR, where staging copies the data."""
    return env["TMPDIR"]
