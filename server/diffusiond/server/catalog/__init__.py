"""The model catalog: scanning, probing, hashing and downloading checkpoints in the models folder."""

from diffusiond.server.catalog.catalog import Catalog
from diffusiond.server.catalog.hasher import Hasher
from diffusiond.server.catalog.schemas import ModelInfo, ModelRecord

__all__ = ['Catalog', 'Hasher', 'ModelInfo', 'ModelRecord']
