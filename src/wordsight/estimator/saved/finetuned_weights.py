"""A saved model's fine-tuned encoders: their weights travel in the folder as
``encoder-<digest>.safetensors``, listed and checksummed in ``config.json`` like every other file,
and are registered (:mod:`wordsight.encoders.finetuned`) from the checked bytes when it loads."""
from __future__ import annotations

from pathlib import Path

from ...storage import ModelFolderError


def save_weights(folder: Path, encoder_names) -> dict[str, str]:
    """Write each fine-tuned encoder's weights into ``folder`` (listed and checksummed with the
    folder's other files when it is sealed); {encoder name: file name}."""
    from safetensors.numpy import save_file

    from ...encoders.finetuned import is_finetuned, registered, split

    written = {}
    for name in encoder_names:
        if not is_finetuned(name):
            continue
        base, digest = split(name)
        file = f"encoder-{digest}.safetensors"
        save_file({k: v for k, v in registered(name).items()}, str(folder / file), metadata={"base": base})
        written[name] = file
    return written


def load_weights(folder: Path, config: dict, contents: dict[str, bytes]) -> None:
    """Register the fine-tuned encoders of a folder whose files were checked (``contents``: the
    verified bytes of every listed file); a missing, unlisted or altered weights file is refused."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_bytes

    from ...encoders import load_model
    from ...encoders.finetuned import FinetunedWeightsError, check_fits, is_finetuned, register_weights, split

    for enc in config["encoders"]:
        name, file = enc["name"], enc.get("weights")
        if not is_finetuned(name):
            if file is not None:
                raise ModelFolderError(f"{folder}: encoder {name!r} is not fine-tuned but names a weights file")
            continue
        if not isinstance(file, str) or file not in contents:
            raise ModelFolderError(f"{folder}: fine-tuned encoder {name!r} has no weights file listed in config.json "
                                   f"({file!r}); the folder is incomplete")
        where = str(folder / file)
        try:
            tensors = load_bytes(contents[file])
            base, _ = split(name)
            check_fits(tensors, load_model(base).state_dict(), name)
            register_weights(name, tensors, where)
        except (SafetensorError, FinetunedWeightsError) as e:
            raise ModelFolderError(f"{where}: not the weights of {name!r} ({e})") from None
