"""Samplers between the proto enum and the domain's A1111 names."""

from diffusiond.server.samplers import Sampler
from diffusiond.v1 import generation_service_pb2 as gen_pb


def sampler_from_pb(value: gen_pb.Sampler.ValueType) -> Sampler:
	"""Unknown values (from a newer client) fall back to the model's own scheduler."""
	name = gen_pb.Sampler.Name(value) if value in gen_pb.Sampler.values() else 'SAMPLER_UNSPECIFIED'
	return Sampler[name.removeprefix('SAMPLER_')]


def sampler_to_pb(sampler: Sampler) -> gen_pb.Sampler.ValueType:
	return gen_pb.Sampler.Value(f'SAMPLER_{sampler.name}')
