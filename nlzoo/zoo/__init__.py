"""The model zoo: registry of named architectures and tags, loading, folders and the Hub."""

from .config import DataConfig, ModelConfig, PretrainedTag
from .converters import convert_checkpoint
from .factory import create_model, load, load_folder, resolve_data_config
from .folder import save_pretrained
from .push import push_to_hub
from .registry import build_model, check_records_registered, get_entry, list_models, model_info, register_model
from .weights import CheckpointMismatchError, load_weights

__all__ = [
    "CheckpointMismatchError",
    "DataConfig",
    "ModelConfig",
    "PretrainedTag",
    "build_model",
    "convert_checkpoint",
    "create_model",
    "get_entry",
    "list_models",
    "load",
    "load_folder",
    "load_weights",
    "model_info",
    "push_to_hub",
    "register_model",
    "resolve_data_config",
    "save_pretrained",
]

from . import families  # noqa: F401  (fills the registry)

check_records_registered()
