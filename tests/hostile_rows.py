"""Damaged rows, as an old or hand-edited database holds them: planted with raw SQL behind the ORM's back."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# Each UPDATE damages one kind of value in the first row of its table.
MODEL_DAMAGE = (
	"default_sampler = 'BOGUS'",
	'default_steps = 100000',
	'default_guidance = 1e30',
	"format = 'weird'",
	"base = 'sd9'",
	"status = 'zombie'",
	'native_size = -64',
	'tags = \'{"not": "a list"}\'',
	'cross_attention_dim = -1',
	'size_bytes = -5',
	'default_vae = 5',
)
ASSET_DAMAGE = (
	"status = 'zombie'",
	"layout = 'weird'",
	'vectors = -3',
	"base = 'sd9'",
	'size_bytes = -5',
	'pickle = 7',
)
LORA_DAMAGE = (
	'default_weight = 1e30',
	"format = 'weird'",
	"status = 'zombie'",
	"base = 'sd9'",
	'rank = -4',
	"alpha = 'x'",
	'suggested_triggers = \'"text"\'',
	"trigger_words = '[1, 2]'",
	"tags = 'null'",
	'data_offset = -1',
)
STYLE_DAMAGE = ("name = ''", "tags = '{}'", "prompt = 'a' || char(0) || 'b'", "created_at = 'yesterday'")
GENERATION_DAMAGE = (
	'spec = \'{"width": -64}\'',
	"state = 'exploded'",
	'loras = \'"x"\'',
	"timings = '[1]'",
	"styles = '5'",
	"tags = '{}'",
)
IMAGE_DAMAGE = ('seed = 18446744073709551616', 'width = -64', "mime_type = 'text/html'", 'size_bytes = -1')
DAMAGE = {
	'models': MODEL_DAMAGE,
	'loras': LORA_DAMAGE,
	'embeddings': ASSET_DAMAGE,
	'vaes': ASSET_DAMAGE,
	'controlnets': ASSET_DAMAGE,
	'styles': STYLE_DAMAGE,
	'generations': GENERATION_DAMAGE,
	'generation_images': IMAGE_DAMAGE,
}


async def damage(sessions: async_sessionmaker[AsyncSession]) -> None:
	async with sessions.begin() as session:
		for table, changes in DAMAGE.items():
			for change in changes:
				await session.execute(
					text(f'UPDATE {table} SET {change} WHERE rowid = (SELECT min(rowid) FROM {table})')
				)
