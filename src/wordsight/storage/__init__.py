"""One folder contract for every fitted object wordsight saves: JSON config + safetensors, the
sha256 of every file listed in the config, the config's own checksum; written beside the target
and swapped in atomically (:mod:`.write`), read back confined, bounded and verified (:mod:`.read`).
Every refusal is one :class:`ModelFolderError` naming the folder and the problem."""
from .read import (
    MAX_CONFIG_BYTES,
    MAX_FILE_BYTES,
    ModelFolderError,
    ModelFolderWarning,
    StoredFolder,
    canonical,
    declared_format,
    read_config,
    read_folder,
)
from .write import jsonable, seal, write_folder

__all__ = ["MAX_CONFIG_BYTES", "MAX_FILE_BYTES", "ModelFolderError", "ModelFolderWarning", "StoredFolder",
           "canonical", "declared_format", "jsonable", "read_config", "read_folder", "seal", "write_folder"]
