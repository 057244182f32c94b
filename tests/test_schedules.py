"""Few-step sampling: LCM and TCD samplers, A1111's schedule types (SGM Uniform for Turbo/Lightning, Karras,
Exponential, Beta, Uniform), per request and as a model default, in the started event and the infotext; CFG 1 runs
one UNet pass a step (no unconditional half). Pixels equal a direct diffusers call with the same scheduler."""

from __future__ import annotations

import inspect
import io
from pathlib import Path

import grpc
import numpy as np
import pytest
from diffusers import EulerDiscreteScheduler, LCMScheduler, SchedulerMixin, TCDScheduler
from PIL import Image

from diffusiond.server.app import Daemon
from diffusiond.server.engine.diffusers_engine import DiffusersEngine
from diffusiond.server.engine.schedulers import SCHEDULERS, make_scheduler
from diffusiond.server.samplers import SIGMA_SAMPLERS, Sampler, Schedule, schedule_problem
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import history_service_pb2 as history_pb
from diffusiond.v1 import history_service_pb2_grpc as history_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.direct import direct_image, direct_pipe, set_defaults
from tests.helpers import Pixels, collect, error_details, pixels, until_error

PROMPT = 'a fox in the snow'


def test_the_sigma_samplers_are_those_whose_diffusers_class_takes_sigma_schedules() -> None:
	takes = {
		sampler
		for sampler, choice in SCHEDULERS.items()
		if 'use_karras_sigmas' in inspect.signature(choice.cls.__init__).parameters
	}
	assert takes == SIGMA_SAMPLERS, 'samplers.py (loop side, no diffusers) must agree with diffusers'
	assert set(SCHEDULERS) == set(Sampler) - {Sampler.UNSPECIFIED}, 'every sampler has a scheduler'


def test_which_schedules_go_with_which_samplers() -> None:
	assert schedule_problem(Sampler.EULER, Schedule.KARRAS) is None
	assert schedule_problem(Sampler.DDIM, Schedule.SGM_UNIFORM) is None
	assert schedule_problem(Sampler.LCM, Schedule.SGM_UNIFORM) is None
	assert schedule_problem(Sampler.DPMPP_2M_KARRAS, Schedule.KARRAS) is None
	assert 'does not use' in str(schedule_problem(Sampler.EULER_A, Schedule.BETA))
	assert 'needs a sampler' in str(schedule_problem(Sampler.UNSPECIFIED, Schedule.EXPONENTIAL))
	assert 'has the Karras schedule' in str(schedule_problem(Sampler.EULER_KARRAS, Schedule.SGM_UNIFORM))


def test_a_schedule_sets_the_scheduler_config() -> None:
	base = EulerDiscreteScheduler(timestep_spacing='leading')
	assert make_scheduler(Sampler.EULER, base, Schedule.SGM_UNIFORM).config.timestep_spacing == 'trailing'
	assert make_scheduler(Sampler.EULER, base, Schedule.UNIFORM).config.timestep_spacing == 'linspace'
	assert make_scheduler(Sampler.EULER, base, Schedule.KARRAS).config.use_karras_sigmas
	assert make_scheduler(Sampler.DPMPP_2M, base, Schedule.EXPONENTIAL).config.use_exponential_sigmas
	assert make_scheduler(Sampler.UNSPECIFIED, base, Schedule.SGM_UNIFORM).config.timestep_spacing == 'trailing'
	assert isinstance(make_scheduler(Sampler.LCM, base), LCMScheduler)
	assert isinstance(make_scheduler(Sampler.TCD, base), TCDScheduler)


def _request(**fields: object) -> gen_pb.GenerateRequest:
	request = gen_pb.GenerateRequest(prompt=PROMPT, steps=4, seed=21, width=64, height=64)
	for name, value in fields.items():
		setattr(request, name, value)
	return request


async def _run(gen: gen_grpc.GenerationServiceAsyncStub, request: gen_pb.GenerateRequest) -> list[gen_pb.GenerateEvent]:
	return await collect(gen.Generate(request))


def _image(events: list[gen_pb.GenerateEvent]) -> Pixels:
	return pixels(next(event.image.data for event in events if event.HasField('image')))


def _direct(folder: Path, scheduler: type[SchedulerMixin], guidance: float, **config: object) -> Pixels:
	return direct_image(direct_pipe(folder, scheduler, **config), PROMPT, 4, 21, guidance)


async def test_few_step_samplers_and_sgm_uniform_equal_direct_diffusers_calls(
	gen: gen_grpc.GenerationServiceAsyncStub, tiny_sd_dir: Path
) -> None:
	lcm = await _run(gen, _request(sampler=gen_pb.SAMPLER_LCM, guidance_scale=1.0))
	tcd = await _run(gen, _request(sampler=gen_pb.SAMPLER_TCD, guidance_scale=1.0))
	sgm = await _run(gen, _request(sampler=gen_pb.SAMPLER_EULER, schedule=gen_pb.SCHEDULE_SGM_UNIFORM))
	np.testing.assert_array_equal(_image(lcm), _direct(tiny_sd_dir, LCMScheduler, 1.0))
	np.testing.assert_array_equal(_image(tcd), _direct(tiny_sd_dir, TCDScheduler, 1.0))
	np.testing.assert_array_equal(
		_image(sgm), _direct(tiny_sd_dir, EulerDiscreteScheduler, 7.5, timestep_spacing='trailing')
	)
	started = next(event.started for event in sgm if event.HasField('started'))
	assert (started.scheduler, started.schedule) == ('EulerDiscreteScheduler', gen_pb.SCHEDULE_SGM_UNIFORM)


async def test_the_karras_schedule_is_the_karras_sampler(gen: gen_grpc.GenerationServiceAsyncStub) -> None:
	by_schedule = await _run(gen, _request(sampler=gen_pb.SAMPLER_EULER, schedule=gen_pb.SCHEDULE_KARRAS))
	by_sampler = await _run(gen, _request(sampler=gen_pb.SAMPLER_EULER_KARRAS))
	plain = await _run(gen, _request(sampler=gen_pb.SAMPLER_EULER))
	np.testing.assert_array_equal(_image(by_schedule), _image(by_sampler))
	assert not np.array_equal(_image(by_schedule), _image(plain))


async def test_cfg_1_runs_one_unet_pass_a_step(gen: gen_grpc.GenerationServiceAsyncStub, daemon: Daemon) -> None:
	await _run(gen, _request())  # the model is active
	engine = daemon.engine
	assert isinstance(engine, DiffusersEngine)
	pipe = engine.active_pipeline()
	assert pipe is not None
	batches: list[int] = []
	hook = pipe.unet.register_forward_hook(lambda _module, args, _output: batches.append(int(args[0].shape[0])))
	try:
		await _run(gen, _request(sampler=gen_pb.SAMPLER_EULER, guidance_scale=1.0))
		off = list(batches)
		batches.clear()
		await _run(gen, _request(sampler=gen_pb.SAMPLER_EULER, guidance_scale=5.0))
		on = list(batches)
	finally:
		hook.remove()
	assert off == [1] * 4, 'no unconditional half: one image, one pass, per step'
	assert on == [2] * 4


@pytest.mark.parametrize(
	('fields', 'words'),
	[
		({'sampler': gen_pb.SAMPLER_DDIM, 'schedule': gen_pb.SCHEDULE_KARRAS}, 'does not use'),
		({'sampler': gen_pb.SAMPLER_EULER_KARRAS, 'schedule': gen_pb.SCHEDULE_BETA}, 'has the Karras schedule'),
		({'schedule': gen_pb.SCHEDULE_EXPONENTIAL}, 'needs a sampler'),
	],
)
async def test_schedules_that_do_not_go_with_the_sampler_are_refused(
	gen: gen_grpc.GenerationServiceAsyncStub, fields: dict[str, object], words: str
) -> None:
	_, error = await until_error(gen.Generate(_request(**fields)))
	assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
	assert words in str(error.details())
	assert error_details(error)[1] == ['schedule']


async def test_a_model_default_schedule_applies_where_it_goes_with_the_sampler(
	gen: gen_grpc.GenerationServiceAsyncStub, models: model_grpc.ModelServiceAsyncStub
) -> None:
	await set_defaults(models, model_pb.ModelDefaults(sampler=gen_pb.SAMPLER_EULER, schedule=gen_pb.SCHEDULE_KARRAS))
	try:
		applied = await _run(gen, _request())
		not_for_ddim = await _run(gen, _request(sampler=gen_pb.SAMPLER_DDIM))
		asked = await _run(gen, _request(schedule=gen_pb.SCHEDULE_SGM_UNIFORM))
		bad = model_pb.ModelDefaults(sampler=gen_pb.SAMPLER_DDIM, schedule=gen_pb.SCHEDULE_BETA)
		with pytest.raises(grpc.aio.AioRpcError) as refused:
			await set_defaults(models, bad)
	finally:
		await set_defaults(models, model_pb.ModelDefaults())
	started = [
		next(event.started for event in events if event.HasField('started'))
		for events in (applied, not_for_ddim, asked)
	]
	assert [item.schedule for item in started] == [
		gen_pb.SCHEDULE_KARRAS,
		gen_pb.SCHEDULE_UNSPECIFIED,
		gen_pb.SCHEDULE_SGM_UNIFORM,
	]
	assert 'Sampler: Euler, Schedule type: Karras, CFG scale' in _infotext(applied)
	assert 'Schedule type' not in _infotext(not_for_ddim)
	assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _infotext(events: list[gen_pb.GenerateEvent]) -> str:
	data = next(event.image.data for event in events if event.HasField('image'))
	return str(Image.open(io.BytesIO(data)).info['parameters'])


async def test_history_keeps_the_schedule_and_regenerate_runs_it_again(
	gen: gen_grpc.GenerationServiceAsyncStub, channel: grpc.aio.Channel
) -> None:
	first = await _run(gen, _request(sampler=gen_pb.SAMPLER_DPMPP_2M, schedule=gen_pb.SCHEDULE_BETA))
	history = history_grpc.HistoryServiceStub(channel)
	record = await history.GetGeneration(history_pb.GetGenerationRequest(id=first[0].job_id))
	again = await collect(history.Regenerate(history_pb.RegenerateRequest(id=first[0].job_id)))
	assert record.generation.schedule == gen_pb.SCHEDULE_BETA
	np.testing.assert_array_equal(_image(again), _image(first))
