"""Samplers and schedules between the proto enums and the domain's A1111 names."""

from diffusiond.server.samplers import Sampler, Schedule
from diffusiond.v1 import generation_service_pb2 as gen_pb


def sampler_from_pb(value: gen_pb.Sampler.ValueType) -> Sampler:
	"""Unknown values (from a newer client) fall back to the model's own scheduler."""
	name = gen_pb.Sampler.Name(value) if value in gen_pb.Sampler.values() else 'SAMPLER_UNSPECIFIED'
	return Sampler[name.removeprefix('SAMPLER_')]


def sampler_to_pb(sampler: Sampler) -> gen_pb.Sampler.ValueType:
	return gen_pb.Sampler.Value(f'SAMPLER_{sampler.name}')


def schedule_from_pb(value: gen_pb.Schedule.ValueType) -> Schedule:
	"""Unknown values are refused before this (the request guard); here they would mean Automatic."""
	name = gen_pb.Schedule.Name(value) if value in gen_pb.Schedule.values() else 'SCHEDULE_UNSPECIFIED'
	return Schedule[name.removeprefix('SCHEDULE_')]


def schedule_to_pb(schedule: Schedule) -> gen_pb.Schedule.ValueType:
	return gen_pb.Schedule.Value(f'SCHEDULE_{schedule.name}')
