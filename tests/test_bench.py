"""The benchmarks' shared request timer against the session's real tritonserver (what it
returns, not how fast: speed is measured in bench/, never in tests)."""

import pytest

from bench.common import request_ms
from bench.queue_stalls import example_inputs
from bot.inference import InferenceClient
from deploy.triton import LocalTriton


@pytest.mark.parametrize("model", ["gan", "style"])
async def test_request_ms_times_each_request(triton: LocalTriton, model: str) -> None:
    client = InferenceClient(triton.grpc_url, timeout_s=60)
    await client.open()
    try:
        inputs = await example_inputs(client, model)
        times = await request_ms(client, model, inputs, requests=3, warm_ups=1)
    finally:
        await client.close()
    assert len(times) == 3
    assert all(ms > 0 for ms in times)
    if model == "style":
        assert inputs["style_weights"].shape[0] == 1
        assert inputs["style_weights"].sum() == pytest.approx(1.0)
