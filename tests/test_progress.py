"""Progress counts the steps the request asked for, for every sampler and every task, the same in the stream,
in ListJobs and in the CLI."""

from __future__ import annotations

import io

import grpc
import pytest
from PIL import Image

from diffusiond.server.engine.denoise import user_step
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from tests.helpers import collect, error_details, rpc_error


def test_scheduler_timesteps_map_to_the_asked_steps() -> None:
	pndm = [user_step(t, 21, 20) for t in range(1, 22)]  # PNDM: one warm-up timestep more
	assert pndm[-1] == 20
	assert sorted(set(pndm)) == list(range(1, 21))
	heun = [user_step(t, 19, 10) for t in range(1, 20)]  # Heun: two evaluations a step, less one
	assert heun[-1] == 10
	assert sorted(set(heun) - {0}) == list(range(1, 11))
	assert [user_step(t, 4, 4) for t in range(1, 5)] == [1, 2, 3, 4]


@pytest.mark.parametrize(
	'sampler', [gen_pb.SAMPLER_UNSPECIFIED, gen_pb.SAMPLER_PNDM, gen_pb.SAMPLER_HEUN, gen_pb.SAMPLER_DPM2_A]
)
async def test_every_sampler_reports_the_asked_steps(
	gen: gen_grpc.GenerationServiceAsyncStub, sampler: gen_pb.Sampler.ValueType
) -> None:
	events = await collect(gen.Generate(gen_pb.GenerateRequest(prompt='x', steps=6, seed=1, sampler=sampler)))
	steps = [event.progress.step for event in events if event.HasField('progress')]
	totals = {event.progress.total_steps for event in events if event.HasField('progress')}
	assert totals == {6}
	assert steps == sorted(set(steps)), 'each step once, in order'
	assert steps[-1] == 6


async def test_img2img_counts_steps_times_strength(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	buffer = io.BytesIO()
	Image.new('RGB', (64, 64), (120, 40, 10)).save(buffer, format='PNG')
	request = gen_pb.GenerateRequest(prompt='x', steps=10, seed=1, init_image=buffer.getvalue(), strength=0.5)
	events = await collect(gen.Generate(request))
	progress = [event.progress for event in events if event.HasField('progress')]
	assert (progress[-1].step, progress[-1].total_steps) == (5, 5)
	request.strength = 0.05
	error = await rpc_error(collect(gen.Generate(request)))
	assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
	assert error_details(error)[1] == ['strength']


async def test_list_jobs_counts_like_the_stream(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	call = gen.Generate(gen_pb.GenerateRequest(prompt='x', steps=40, seed=1, sampler=gen_pb.SAMPLER_PNDM))
	async for event in call:
		if event.HasField('progress'):
			break
	jobs = (await gen.ListJobs(gen_pb.ListJobsRequest())).jobs
	call.cancel()
	assert [(job.steps, job.total_steps) for job in jobs] == [(40, 40)]
	assert 1 <= jobs[0].step <= 40
	assert jobs[0].stage == gen_pb.STAGE_DENOISING
