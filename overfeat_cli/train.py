"""overfeat train: a recipe trained with model.fit (or across machines)."""

from __future__ import annotations

import os

from overfeat_cli import common, flags
from overfeat_cli.flags import TASKS


def add_parser(commands):
    """The `train` subparser, added to `commands`."""
    parser = commands.add_parser(
        "train",
        help="train from a recipe (config file or bundled name), resuming if stopped",
        description=(
            "Train the classifier of a recipe with model.fit, or with --task "
            "localize the box regressor on its frozen features. Checkpoints go to "
            "OUTPUT_DIR/checkpoints every epoch; running the same command again "
            "resumes from the last one. TensorBoard logs: OUTPUT_DIR/tensorboard."
        ),
        **flags.help_format("train"),
    )
    parser.add_argument(
        "--config",
        required=True,
        help="a YAML recipe path, or a bundled recipe name (e.g. shapes_accurate)",
    )
    parser.add_argument(
        "--task",
        choices=TASKS,
        help="classify (the network), localize (a box regressor on the "
        "classifier of localize.backbone) or detect (a detector, from "
        "detect.backbone if set); default: the config's task",
    )
    parser.add_argument(
        "--strategy",
        choices=("default", "one_device", "mirrored", "multi_worker", "tpu"),
        help="tf.distribute strategy (overrides train.strategy)",
    )
    parser.add_argument(
        "--worker-hosts",
        metavar="HOST:PORT,...",
        help="the machines of a multi-worker run, the chief first, the same "
        "list on each (builds TF_CONFIG; implies --strategy multi_worker)",
    )
    parser.add_argument(
        "--task-index",
        type=int,
        metavar="I",
        help="this machine's place in --worker-hosts (0: the chief, which "
        "writes the run's files)",
    )
    parser.add_argument(
        "--output-dir", "--output", help="run folder (overrides output_dir)"
    )
    flags.add_overrides(parser)
    return parser


def run(args) -> str:
    from overfeat_tf.config import load_config
    from overfeat_tf.training import train

    overrides = list(args.overrides)
    if args.worker_hosts is not None or args.task_index is not None:
        overrides.append(f"train.strategy={_multi_worker(args)}")
    if args.strategy:
        overrides.append(f"train.strategy={args.strategy}")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if args.task:
        overrides.append(f"task={args.task}")
    config = load_config(args.config, overrides)
    flag = "--output-dir" if args.output_dir else "output_dir"
    common.writable_folder(config.output_dir, flag)
    history = train(config)
    if not history.history:
        return (
            f"{config.output_dir} already finished its {config.train.epochs} epochs; "
            f"model: {config.output_dir}/model.keras"
        )
    last = {name: values[-1] for name, values in history.history.items()}
    figures = ", ".join(f"{name} {value:.4g}" for name, value in sorted(last.items()))
    return f"trained {config.output_dir}/model.keras: {figures}"


def _multi_worker(args) -> str:
    """Sets TF_CONFIG from --worker-hosts and --task-index."""
    from overfeat_tf.errors import InvalidValueError
    from overfeat_tf.training.cluster import tf_config_for

    if args.worker_hosts is None or args.task_index is None:
        raise InvalidValueError(
            "--worker-hosts and --task-index go together: the same host list "
            "on every machine, and each machine's own index."
        )
    if args.strategy not in (None, "multi_worker"):
        raise InvalidValueError(
            f"--worker-hosts trains with --strategy multi_worker. Received: "
            f"--strategy {args.strategy}"
        )
    os.environ["TF_CONFIG"] = tf_config_for(args.worker_hosts, args.task_index)
    return "multi_worker"
