"""What several commands do at run time: the recipe, the model, the scales,
and checks that an output path is writable before hours of work."""

from __future__ import annotations

import os
import tempfile


def read_config(args, required: bool = False):
    """The --config recipe with the KEY=VALUE overrides, or None without one."""
    from overfeat_tf.config import load_config
    from overfeat_tf.errors import InvalidValueError

    if args.config is None:
        if required:
            raise InvalidValueError(
                "give --config NAME: the recipe names the data and the run folder"
            )
        if args.overrides:
            raise InvalidValueError(
                f"KEY=VALUE overrides need --config; got {' '.join(args.overrides)}"
            )
        return None
    return load_config(args.config, args.overrides)


def load_model(args, config, path=None):
    """The model at `path`, else of --model, else the run folder of --config,
    its normalization layers folded into its convolutions (every command
    here runs inference: same outputs, fewer ops, plain convs to export)."""
    from overfeat_tf.derived import fold_normalization
    from overfeat_tf.errors import InvalidValueError, MissingFileError
    from overfeat_tf.saving import load_model

    path = path or args.model or (config.output_dir if config else None)
    if path is None:
        raise InvalidValueError("give --model PATH or --config NAME (its run folder)")
    try:
        return fold_normalization(load_model(path))
    except FileNotFoundError as error:
        hint = (
            f"train it first: overfeat train --config {args.config}"
            if config is not None and not args.model
            else "pass --model with a .keras file or a run folder"
        )
        raise MissingFileError(f"{error}; {hint}") from None


def writable_folder(path: str, flag: str) -> None:
    """Fails now, naming the flag, if `path` cannot be a folder we write in
    (under a file, a name too long, no permission), not after minutes of
    data loading and model building."""
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as error:
        raise cannot_write(flag, path, error) from None


def cannot_write(flag: str, path: str, error: OSError) -> Exception:
    from overfeat_tf.errors import InvalidValueError

    return InvalidValueError(
        f"{flag} {path}: cannot write there ({error.strerror or error})"
    )


def writable_file(path: str, flag: str) -> None:
    """As `writable_folder`, for a file that the command writes at its end."""
    from overfeat_tf.errors import InvalidValueError

    if os.path.isdir(path):
        raise InvalidValueError(
            f"{flag} {path} is a folder; give a file name, e.g. "
            f"{os.path.join(path, 'results.json')}"
        )
    writable_folder(os.path.dirname(path) or ".", flag)
    existed = os.path.exists(path)
    try:
        open(path, "a").close()
    except OSError as error:
        raise cannot_write(flag, path, error) from None
    if not existed:
        os.remove(path)


def scales_of(args, geometry):
    from overfeat_tf import inference

    if args.scales:
        return inference.paper_scales(geometry, args.scales)
    if args.scale_factors:
        return inference.scales_from_factors(geometry, args.scale_factors)
    return args.scale_sizes  # None: the default six


def require_regressor(model, args):
    from overfeat_tf.errors import InvalidValueError

    if model.regressor is None:
        raise InvalidValueError(
            f"--task {args.task or 'localize'} needs a model with a box regressor; "
            f"{args.model or 'the config run folder'} has none (train one: "
            "overfeat train --task localize --config shapes_fast_localize)"
        )
