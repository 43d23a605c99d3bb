"""The dask executor gives the same rows as the local one."""

from __future__ import annotations

import pandas as pd
import pytest

from energaizer.sweep import run_sweep

distributed = pytest.importorskip("distributed")


def test_dask_matches_local(small_grid):
    local = run_sweep(small_grid, workers=1)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        remote = run_sweep(small_grid, executor="dask", dask_client=client)
    pd.testing.assert_frame_equal(remote.frame(), local.frame())
