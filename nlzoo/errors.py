"""Every failure a user can cause, in one module (as ``huggingface_hub.errors``).

The CLI prints exactly these as one line and exits 2; anything else is a bug (or a resource failure) and keeps
its traceback. Each class also derives from the builtin a caller would have caught before this module existed
(``KeyError`` for unknown names, ``OSError`` for Hub/file trouble, ...), so ``except KeyError`` keeps working.

Raise them where the input enters, with a message that says what was wrong and what to do.
"""

from __future__ import annotations

import os


class NlzooError(Exception):
    """Base of every user-caused nlzoo error."""


class UnknownNameError(NlzooError, KeyError):
    """An unknown model, tag, preset, part, layer or command name (the message lists close matches)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class ConfigError(NlzooError, ValueError):
    """An invalid argument, ``config.json`` field or recipe key (the message names the field)."""


class UnknownArgumentError(ConfigError, TypeError):
    """A keyword argument the builder does not take, or a required one missing (the message lists the accepted)."""


class LimitError(NlzooError, ValueError):
    """A size the user controls (pixels, frames, views, queries, panel size, upload) is over its limit."""


class WeightsError(NlzooError, ValueError):
    """Weights that cannot be used: they do not fit the model, fail their checksum, or are unsafe to read."""


class CheckpointMismatchError(WeightsError):
    """A checkpoint does not fit the model (missing, unexpected or mis-shaped keys)."""


class ChecksumMismatchError(WeightsError, OSError):
    """A file does not have the sha256 it must have (downloaded, cached or recorded in a folder)."""


class UnsafeCheckpointError(WeightsError):
    """The file needs code execution to load (or is not a checkpoint); nlzoo refuses it."""


class ConversionError(WeightsError):
    """A checkpoint cannot be converted as asked (wrong format, wrong model, or keys left over)."""


class OriginUnavailableError(WeightsError, FileNotFoundError):
    """Published weights are neither cached nor downloadable now."""


class HubError(NlzooError, OSError):
    """Trouble talking to the Hugging Face Hub (or a mirror)."""


class HubUnavailableError(HubError):
    """The Hub could not be reached (or offline mode is on) and the file is not in the cache."""


class HubNotFoundError(HubError, FileNotFoundError):
    """The Hub answered, but the repo, revision or file does not exist (or is private / gated)."""


class HubAuthError(HubError):
    """An upload needs a token and none (or an invalid one) is configured."""


class TrainingDivergedError(NlzooError, FloatingPointError):
    """The training loss became NaN or infinite (the message names the step and the settings to change)."""


class DataError(NlzooError, OSError):
    """An input file (video, image, annotation, list file) that cannot be used."""


class VideoDecodeError(DataError, RuntimeError):
    """A video that cannot be read (missing, empty, corrupt or truncated); datasets skip and count these."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason

    def __str__(self) -> str:  # OSError would format (errno, strerror) pairs
        return f"{self.path}: {self.reason}"

    def __reduce__(self):  # DataLoader workers pickle it: rebuild from (path, reason), not the message
        return type(self), (self.path, self.reason)


class BrokenDatasetError(DataError, RuntimeError):
    """Many files in a row could not be read: the dataset (paths, formats, mount), not one file, is broken."""


class ImageDecodeError(DataError):
    """An image file could not be opened or decoded (the message names the file)."""


class InputNotFoundError(DataError, FileNotFoundError):
    """A path the user named does not exist (or is the wrong kind: a folder for a file, a file for a folder)."""


class OutputExistsError(NlzooError, FileExistsError):
    """An output path is in the way (a file where a folder goes, or a folder that must not exist yet)."""


class ExportError(NlzooError, RuntimeError):
    """A model cannot be exported as asked (the message says why, not the tracer's dump)."""


__all__ = [
    "CheckpointMismatchError",
    "ChecksumMismatchError",
    "ConfigError",
    "ConversionError",
    "DataError",
    "ExportError",
    "HubAuthError",
    "HubError",
    "HubNotFoundError",
    "HubUnavailableError",
    "ImageDecodeError",
    "InputNotFoundError",
    "LimitError",
    "NlzooError",
    "OriginUnavailableError",
    "OutputExistsError",
    "UnknownArgumentError",
    "UnknownNameError",
    "UnsafeCheckpointError",
    "VideoDecodeError",
    "WeightsError",
]
