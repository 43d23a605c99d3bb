"""Ranks of one job combine into one estimate that charges every GPU for the whole job."""

from __future__ import annotations

import pytest

import energaizer

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def job(shared_data):
    return energaizer.estimate(
        trace=shared_data / "traces" / "param" / "v100sxm32_dlrm_8rank_kineto.tar.gz")


def test_job_draws_at_least_idle_power(job):
    assert job.avg_power_w >= job.gpu.idle_power_w


def test_early_ranks_wait_at_idle(job):
    waits = [(job.duration_s - rank.duration_s) * rank.gpu.idle_power_w for rank in job.ranks]
    assert max(waits) > 0
    assert job.energy_j == pytest.approx(sum(rank.energy_j for rank in job.ranks) + sum(waits))
    assert job.idle_energy_j == pytest.approx(
        sum(rank.idle_energy_j for rank in job.ranks) + sum(waits))
