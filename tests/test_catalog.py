"""The catalog on a real SQLite store: probing, rescans, names, background hashing, lookups."""

import asyncio
import hashlib
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from diffusiond.server.catalog import Catalog, Hasher
from diffusiond.server.catalog.catalog import ModelQuery
from diffusiond.server.catalog.probe import probe_file, probe_folder
from diffusiond.server.catalog.schemas import ModelBase, ModelFormat, ModelStatus
from diffusiond.server.errors import InvalidArgumentError, ModelNotFoundError
from diffusiond.server.store import Database, ModelRepository, default_url
from tests.checkpoints import fake_checkpoint, write_header
from tests.conftest import write_fake_model


@pytest.fixture
async def catalog(tmp_path: Path) -> AsyncIterator[Catalog]:
	database = Database(default_url(tmp_path))
	await database.upgrade()
	yield Catalog(ModelRepository(database.sessions), tmp_path / 'models', tmp_path / 'configs', '', False)
	await database.close()


@pytest.mark.parametrize(
	('base', 'inpainting', 'expected', 'native'),
	[
		('sd1', False, ModelBase.SD1, 512),
		('sd2', False, ModelBase.SD2, 768),
		('sdxl', False, ModelBase.SDXL, 1024),
		('sd1', True, ModelBase.SD1, 512),
	],
)
def test_probe_reads_the_base_from_header_shapes(
	tmp_path: Path, base: str, inpainting: bool, expected: ModelBase, native: int
) -> None:
	probe = probe_file(fake_checkpoint(tmp_path / 'm.safetensors', base, inpainting))
	assert (probe.format, probe.base, probe.status) == (ModelFormat.SAFETENSORS, expected, ModelStatus.READY)
	assert probe.inpainting is inpainting
	assert probe.native_size == native
	assert probe.arch.in_channels == (9 if inpainting else 4)


def test_probe_explains_what_is_not_a_checkpoint(tmp_path: Path) -> None:
	lora = write_header(tmp_path / 'lora.safetensors', {'lora_unet_down_blocks_0.lora_down.weight': [4, 320]})
	vae = write_header(tmp_path / 'vae.safetensors', {'encoder.conv_in.weight': [128, 3, 3, 3]})
	(tmp_path / 'short.safetensors').write_bytes(b'\x01\x02')
	(tmp_path / 'cut.safetensors').write_bytes((1000).to_bytes(8, 'little') + b'{"a":')
	(tmp_path / 'junk.safetensors').write_bytes((5).to_bytes(8, 'little') + b'nope!')
	(tmp_path / 'old.ckpt').write_bytes(b'not opened')
	expected = {
		lora: 'LoRA',
		vae: 'VAE',
		tmp_path / 'short.safetensors': 'too short',
		tmp_path / 'cut.safetensors': 'truncated',
		tmp_path / 'junk.safetensors': 'not valid JSON',
	}
	for path, words in expected.items():
		probe = probe_file(path)
		assert probe.status is ModelStatus.INVALID
		assert words in probe.problem
	pickle = probe_file(tmp_path / 'old.ckpt')
	assert (pickle.format, pickle.status) == (ModelFormat.PICKLE, ModelStatus.UNSAFE)


def test_probe_reads_diffusers_folders(tmp_path: Path, tiny_sd_dir: Path) -> None:
	tiny = probe_folder(tiny_sd_dir)
	assert (tiny.base, tiny.native_size, tiny.demo, tiny.arch.cross_attention_dim) == (ModelBase.UNKNOWN, 64, True, 32)
	sd1 = probe_folder(write_fake_model(tmp_path / 'sd1', cross_attention_dim=768))
	assert (sd1.base, sd1.demo) == (ModelBase.SD1, False)
	broken = tmp_path / 'broken'
	broken.mkdir()
	(broken / 'model_index.json').write_text('{}')
	assert probe_folder(broken).status is ModelStatus.INVALID


async def test_rescans_probe_only_what_changed(catalog: Catalog) -> None:
	models = catalog.models_dir
	for index in range(5):
		fake_checkpoint(models / 'sub' / f'model-{index}.safetensors')
	write_fake_model(models / 'folder')
	(models / '.download-abc.part').write_bytes(b'partial')  # hidden: a download in progress
	(models / 'notes.txt').write_text('not a model')
	first = await catalog.refresh()
	assert (first.added, first.removed, first.changed, first.unchanged) == (6, 0, 0, 0)
	assert (await catalog.refresh()).unchanged == 6
	fake_checkpoint(models / 'sub' / 'model-0.safetensors', 'sdxl', payload=b'more')
	(models / 'sub' / 'model-1.safetensors').unlink()
	again = await catalog.refresh()
	assert (again.added, again.removed, again.changed, again.unchanged) == (0, 1, 1, 4)
	assert (await catalog.get('sub/model-0')).base is ModelBase.SDXL
	names = [record.name for record in await catalog.repo.all()]
	assert names == ['folder', 'sub/model-0', 'sub/model-2', 'sub/model-3', 'sub/model-4']


async def test_a_list_read_before_the_first_scan_is_whole(catalog: Catalog) -> None:
	"""A daemon serves while it starts: a list read before its first scan scans instead of answering empty."""
	for index in range(3):
		fake_checkpoint(catalog.models_dir / f'model-{index}.safetensors')
	lists = await asyncio.gather(catalog.browse(ModelQuery(), 0, 10), catalog.browse(ModelQuery(), 0, 10))
	assert [window.total for window in lists] == [3, 3]
	assert len(await catalog.entries()) == 3
	assert (await catalog.refresh()).unchanged == 3, 'the reads scanned once each at most; nothing is new'


async def test_unregistered_models_stay_out_until_restored(catalog: Catalog) -> None:
	fake_checkpoint(catalog.models_dir / 'keep.safetensors')
	await catalog.refresh()
	record = await catalog.get('keep')
	await catalog.delete(record, delete_files=False)
	assert (await catalog.refresh()).added == 0
	with pytest.raises(ModelNotFoundError):
		await catalog.get('keep')
	assert await catalog.repo.unhide_all() == 1
	assert (await catalog.get('keep')).id == record.id


async def test_same_stem_gets_distinct_names(catalog: Catalog) -> None:
	fake_checkpoint(catalog.models_dir / 'twin.safetensors')
	(catalog.models_dir / 'twin.ckpt').write_bytes(b'pickle')
	await catalog.refresh()
	assert sorted(record.name for record in await catalog.repo.all()) == ['twin', 'twin.ckpt']


async def test_background_hashes_are_lazy_cached_and_found_by_prefix(catalog: Catalog) -> None:
	path = fake_checkpoint(catalog.models_dir / 'a.safetensors', payload=b'weights-a')
	fake_checkpoint(catalog.models_dir / 'b.safetensors', payload=b'weights-a')  # same bytes: same hash
	fake_checkpoint(catalog.models_dir / 'c.safetensors', payload=b'weights-c')
	await catalog.refresh()
	assert (await catalog.get('a')).sha256 is None  # a scan never hashes
	hasher = Hasher([catalog], catalog.changed)
	assert await hasher.hash_pending() == 3
	assert await hasher.hash_pending() == 0  # cached by (path, size, mtime)
	record = await catalog.get('a')
	expected = hashlib.sha256(path.read_bytes()).hexdigest()
	assert record.sha256 == expected
	assert record.autov2 == expected[:10]
	with pytest.raises(InvalidArgumentError, match='matches several models'):
		await catalog.get(record.autov2)
	other = await catalog.get('c')
	assert other.sha256 is not None
	assert (await catalog.get(other.sha256[:8].upper())).name == 'c'
	stat = path.stat()
	os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
	await catalog.refresh()
	assert (await catalog.get('a')).sha256 is None  # changed since it was hashed


async def test_unknown_names_say_how_to_find_models(catalog: Catalog) -> None:
	with pytest.raises(ModelNotFoundError, match='diffusionctl models list') as caught:
		await catalog.get('abc')
	assert 'at least 6 characters' in caught.value.message
	with pytest.raises(ModelNotFoundError, match='no model is installed'):
		await catalog.resolve('')


async def test_the_store_runs_in_wal_mode_at_the_latest_revision(tmp_path: Path, catalog: Catalog) -> None:
	database = Database(default_url(tmp_path))
	assert await database.revision() == '0017'
	await database.close()
	with sqlite3.connect(tmp_path / 'diffusiond.db') as connection:
		assert connection.execute('PRAGMA journal_mode').fetchone() == ('wal',)
