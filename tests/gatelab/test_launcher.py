"""How the local launcher shares the CPU among its workers."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from gatelab.launcher import Stack, worker_cpu_threads
from gatelab.settings import Settings

CORES = len(os.sched_getaffinity(0))


@pytest.mark.parametrize("workers", [1, 2, 3, 64])
def test_workers_share_the_cores(workers):
    threads = worker_cpu_threads(workers)

    assert threads == max(1, CORES // workers)
    assert threads * workers <= max(CORES, workers)


def test_several_workers_get_a_thread_cap(tmp_path, monkeypatch):
    monkeypatch.delenv("GATELAB_CPU_THREADS", raising=False)
    stack = Stack(Settings(home=tmp_path), workers=2)

    environment = stack._base_environment()

    assert environment["GATELAB_CPU_THREADS"] == str(max(1, CORES // 2))


def test_one_worker_gets_no_cap(tmp_path, monkeypatch):
    monkeypatch.delenv("GATELAB_CPU_THREADS", raising=False)

    environment = Stack(Settings(home=tmp_path), workers=1)._base_environment()

    assert "GATELAB_CPU_THREADS" not in environment


def test_chosen_cap_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("GATELAB_CPU_THREADS", "3")

    environment = Stack(Settings(home=tmp_path), workers=4)._base_environment()

    assert environment["GATELAB_CPU_THREADS"] == "3"


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_bad_thread_count_names_the_setting(value, monkeypatch):
    monkeypatch.setenv("GATELAB_CPU_THREADS", value)

    with pytest.raises(ValidationError) as raised:
        Settings()

    assert "cpu_threads" in str(raised.value)
    assert value in str(raised.value)
