"""Single-file checkpoints of every known family load offline from the configs shipped with the daemon: an
SD1.5-shaped file in the original (LDM) key layout generates end to end; SD2 and SDXL are checked by their
configs against the real models' shapes."""

import os
from pathlib import Path

import grpc
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from diffusiond.server.catalog.configs import BUILTIN, builtin_config_dir, is_config_dir
from diffusiond.server.catalog.families import FAMILIES
from diffusiond.server.catalog.family_layout import TextEncoder
from diffusiond.v1 import generation_service_pb2 as gen_pb
from diffusiond.v1 import generation_service_pb2_grpc as gen_grpc
from diffusiond.v1 import model_service_pb2 as model_pb
from diffusiond.v1 import model_service_pb2_grpc as model_grpc
from tests.conftest import StartReal
from tests.helpers import collect, pixels
from tests.sd15 import write_sd15_checkpoint


@pytest.fixture(scope='session')
def sd15_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
	return write_sd15_checkpoint(tmp_path_factory.mktemp('sd15') / 'sd15-random.safetensors')


async def test_an_sd15_single_file_generates_offline_with_no_configs_beside_it(
	sd15_file: Path, tmp_path: Path, start_real: StartReal
) -> None:
	models = tmp_path / 'models'
	models.mkdir()
	os.link(sd15_file, models / sd15_file.name)  # the 2 GB file, not copied
	daemon = await start_real({'models': {'load_default_at_start': False}})
	async with grpc.aio.insecure_channel(f'127.0.0.1:{daemon.port}') as chan:
		model = (await model_grpc.ModelServiceStub(chan).GetModel(model_pb.GetModelRequest(model='sd15-random'))).model
		request = gen_pb.GenerateRequest(prompt='a red fox', steps=1, width=64, height=64, seed=5)
		events = await collect(gen_grpc.GenerationServiceStub(chan).Generate(request))
	assert (model.status, model.base, model.format) == (
		model_pb.MODEL_STATUS_READY,
		model_pb.MODEL_BASE_SD1,
		model_pb.MODEL_FORMAT_SAFETENSORS,
	)
	assert events[1].started.model == 'sd15-random', 'the single file is the default'
	assert events[-1].completed.state == gen_pb.JOB_STATE_SUCCEEDED
	image = pixels(next(event.image for event in events if event.HasField('image')).data)
	assert image.shape == (64, 64, 3)
	assert is_config_dir(tmp_path / 'configs' / BUILTIN / 'sd1'), 'the shipped configs were laid out'


def _count(module: torch.nn.Module) -> int:
	return sum(parameter.numel() for parameter in module.parameters())


def _encoder(encoder: TextEncoder) -> torch.nn.Module:
	config = CLIPTextConfig(**{key: value for key, value in encoder.config().items() if key != 'architectures'})
	cls = CLIPTextModelWithProjection if encoder.cls == 'CLIPTextModelWithProjection' else CLIPTextModel
	with torch.device('meta'):
		model: torch.nn.Module = cls(config)
	return model


def _component(cls: type[UNet2DConditionModel] | type[AutoencoderKL], config: dict[str, object]) -> torch.nn.Module:
	with torch.device('meta'):
		model: torch.nn.Module = cls.from_config(
			{key: value for key, value in config.items() if not key.startswith('_')}
		)
	return model


# Parameter counts of the published models' components (diffusers and transformers report the same).
@pytest.mark.parametrize(
	('family', 'unet', 'encoders'),
	[
		('sd1', 859_520_964, [123_060_480]),
		('sd1-inpainting', 859_535_364, [123_060_480]),
		('sd2', 865_910_724, [340_387_840]),
		('sdxl', 2_567_463_684, [123_060_480, 694_659_840]),
	],
)
def test_the_shipped_configs_have_the_published_models_shapes(family: str, unet: int, encoders: list[int]) -> None:
	shipped = FAMILIES[family]
	assert _count(_component(UNet2DConditionModel, shipped.unet)) == unet
	assert _count(_component(AutoencoderKL, shipped.vae)) == 83_653_863
	assert [_count(_encoder(encoder)) for encoder in shipped.encoders] == encoders


def test_every_family_lays_out_as_a_diffusers_config_folder(tmp_path: Path) -> None:
	for name, family in FAMILIES.items():
		folder = builtin_config_dir(tmp_path, name)
		assert folder is not None
		assert is_config_dir(folder), name
		assert all((folder / encoder.folder / 'config.json').is_file() for encoder in family.encoders)
	assert builtin_config_dir(tmp_path, 'sd1') == tmp_path / BUILTIN / 'sd1', 'laid out once, then reused'
	assert builtin_config_dir(tmp_path, 'no-such-family') is None
