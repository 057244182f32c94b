"""SIGTERM on a real `diffusiond` process with one job running and several queued."""

from __future__ import annotations

import asyncio
import shutil
import signal
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.conftest import TINY_MODEL, StartReal
from tests.helpers import collect, error_details, next_of, rpc_error, until_error
from tests.processes import spawn_daemon

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_sigterm_drains_finishes_the_running_job_and_exits_0(
	tmp_path: Path, tiny_sd_dir: Path, start_real: StartReal
) -> None:
	shutil.copytree(tiny_sd_dir, tmp_path / 'models' / TINY_MODEL)
	process, address = await spawn_daemon(tmp_path)
	try:
		async with grpc.aio.insecure_channel(address) as chan:
			stub = gen_grpc.GenerationServiceStub(chan)
			running = stub.Generate(gen_pb.GenerateRequest(prompt='finishing', steps=60, seed=3))
			job_id = (await next_of(running, 'progress')).job_id
			queued = [stub.Generate(gen_pb.GenerateRequest(prompt=f'queued {i}', steps=2)) for i in range(3)]
			for call in queued:
				await next_of(call, 'queued')
			process.send_signal(signal.SIGTERM)
			health = health_pb2_grpc.HealthStub(chan)
			for _ in range(100):
				if (await health.Check(health_pb2.HealthCheckRequest())).status == NOT_SERVING:
					break
				await asyncio.sleep(0.02)
			refused = await rpc_error(model_grpc.ModelServiceStub(chan).ListModels(model_pb.ListModelsRequest()))
			ends = [await until_error(call) for call in queued]
			rest = await collect(running)
		_, stderr = await asyncio.wait_for(process.communicate(), 60)
	finally:
		if process.returncode is None:
			process.kill()
	assert refused.code() == grpc.StatusCode.UNAVAILABLE
	assert error_details(refused)[0].reason == 'SHUTTING_DOWN'
	for _, error in ends:
		assert error.code() == grpc.StatusCode.CANCELLED
		assert error_details(error)[0].reason == 'CANCELLED_BY_SHUTDOWN'
	assert rest[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
	assert process.returncode == 0, stderr.decode()
	daemon = await start_real()
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		listed = await history_grpc.HistoryServiceStub(chan).ListGenerations(history_pb.ListGenerationsRequest())
	assert [(record.id, record.state, len(record.images)) for record in listed.generations] == [
		(job_id, gen_pb.JOB_STATE_SUCCEEDED, 1)
	]
