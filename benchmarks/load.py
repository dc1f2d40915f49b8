"""A closed-loop HTTP load generator: each client sends its next request as soon as the previous response arrives."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field

import httpx

from benchmarks.report import LoadAverage, load_average

# Requests that each client sends before the clock starts, to open its connection.
WARMUP_REQUESTS = 2


@dataclass
class LoadResult:
    """Latencies of the responses with the expected status, and counts of the failed requests."""

    latencies_ms: list[float] = field(default_factory=list)
    failed: int = 0
    warmup_requests: int = 0
    warmup_succeeded: int = 0
    seconds: float = 0.0
    load: LoadAverage = (0.0, 0.0, 0.0)
    errors: dict[str, int] = field(default_factory=dict)
    # CPU seconds spent during the run, filled in by the caller that can see the processes.
    server_cpu_seconds: float = 0.0
    client_cpu_seconds: float = 0.0

    @property
    def succeeded(self) -> int:
        return len(self.latencies_ms)

    @property
    def sent(self) -> int:
        """Requests sent, warm-up included."""
        return self.warmup_requests + self.succeeded + self.failed

    @property
    def rate(self) -> float:
        """Responses with the expected status per second."""
        return self.succeeded / self.seconds if self.seconds else 0.0

    def percentile(self, percent: float) -> float:
        """Return the nearest-rank percentile of the latencies in milliseconds, or NaN without any."""
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        rank = max(1, math.ceil(percent / 100 * len(ordered)))
        return ordered[rank - 1]

    def record_error(self, description: str) -> None:
        self.failed += 1
        self.errors[description] = self.errors.get(description, 0) + 1


async def generate_load(base_url: str, method: str, path: str, body: object | None, expected_status: int,
                        clients: int, seconds: float) -> LoadResult:
    """Run `clients` concurrent clients against one endpoint for `seconds` and collect their latencies."""
    result = LoadResult()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        warmups = [_send(client, method, path, body) for _ in range(clients * WARMUP_REQUESTS)]
        result.warmup_requests = len(warmups)
        for response in await asyncio.gather(*warmups, return_exceptions=True):
            if isinstance(response, httpx.Response) and response.status_code == expected_status:
                result.warmup_succeeded += 1

        started = time.perf_counter()
        deadline = started + seconds
        tasks = [_client_loop(client, method, path, body, expected_status, deadline, result) for _ in range(clients)]
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - started
    result.load = load_average()
    return result


async def _send(client: httpx.AsyncClient, method: str, path: str, body: object | None) -> httpx.Response:
    if body is None:
        return await client.request(method, path)
    return await client.request(method, path, json=body)


async def _client_loop(client: httpx.AsyncClient, method: str, path: str, body: object | None,
                       expected_status: int, deadline: float, result: LoadResult) -> None:
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            response = await _send(client, method, path, body)
        except httpx.HTTPError as error:
            result.record_error(type(error).__name__)
            continue
        latency_ms = 1000 * (time.perf_counter() - started)
        if response.status_code == expected_status:
            result.latencies_ms.append(latency_ms)
        else:
            result.record_error(f"HTTP {response.status_code}")
