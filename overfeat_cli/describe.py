"""overfeat describe: a network's layer table, sizes, parameters, geometry."""

from __future__ import annotations

from overfeat_cli import common, flags


def add_parser(commands):
    """The `describe` subparser, added to `commands`."""
    parser = commands.add_parser(
        "describe",
        help="print a network's layer table, sizes, parameters and multiply-adds",
        description=(
            "Print the paper's layer table for a network with each layer's "
            "output size at an input size (default: the window), its "
            "parameters and multiply-adds, and the derived geometry."
        ),
        **flags.help_format("describe"),
    )
    parser.add_argument("--network", choices=("fast", "accurate"), default="accurate")
    parser.add_argument(
        "--image-size",
        type=flags.image_size,
        metavar="HxW",
        help="input size in pixels",
    )
    parser.add_argument("--stride", choices=("coarse", "fine"), default="coarse")
    parser.add_argument("--width", type=flags.positive_float, default=1.0)
    parser.add_argument("--num-classes", type=flags.positive_int, default=1000)
    parser.add_argument(
        "--model",
        help="a saved model (.keras) or run folder: its network, width and "
        "classes instead of --network, --width and --num-classes",
    )
    return parser


def run(args) -> str:
    import keras

    import overfeat_tf as of
    from overfeat_tf.errors import InvalidValueError

    if args.model:
        saved = common.load_model(args, None)
        args.network, args.width = saved.spec.name, saved.width
        args.num_classes = saved.num_classes
    builder = of.overfeat_fast if args.network == "fast" else of.overfeat_accurate
    model = builder(args.num_classes, width=args.width, stride=args.stride)
    spec, g = model.spec, model.geometry
    height, width = args.image_size or (g.window, g.window)
    if min(height, width) < g.min_input_size:
        raise InvalidValueError(
            f"--image-size must be at least {g.min_input_size}x{g.min_input_size} "
            f"for the {args.network} model. Received: {height}x{width}"
        )
    shapes = g.layer_shapes(height, width, args.stride)
    table = "Table 1" if spec.name == "fast" else "Table 3"
    lines = [
        f"OverFeat {spec.name} ({table}), width {args.width:g}, "
        f"{args.num_classes} classes, {args.stride} stride",
        f"window {g.window} px, coarse stride {g.coarse_stride} px, "
        f"fine stride {g.fine_stride} px",
        "",
        f"{'layer':<8}{'kind':<16}{'maps':>6}{'filter':>8}{'stride':>8}"
        f"{'params':>14}  output at {height}x{width}",
    ]
    for layer in model.layers[1:-1]:
        name = layer.name
        if name.startswith("dropout"):
            continue
        conv = getattr(layer, "conv", layer)
        if isinstance(conv, keras.layers.Conv2D):
            k = conv.kernel_size[0]
            kind = "conv" if name.startswith("conv") else "full (conv)"
            if getattr(layer, "dilation", 1) > 1:
                kind = f"full (dil. {layer.dilation})"
            row = (kind, conv.filters, f"{k}x{k}", conv.strides[0], conv.count_params())
        else:
            kind = f"max {layer.pool_size[0]}/{layer.strides[0]}"
            row = (kind, "", "", layer.strides[0], 0)
        h, w = shapes[name]
        lines.append(
            f"{name:<8}{row[0]:<16}{row[1]!s:>6}{row[2]:>8}{row[3]:>8}"
            f"{row[4]:>14,}  {h}x{w}"
        )
    macs = of.multiply_adds(
        spec,
        height,
        width,
        num_classes=args.num_classes,
        width_multiplier=args.width,
        stride=args.stride,
    )
    cells = shapes[spec.fc_names[-1]]
    lines += [
        "",
        f"parameters {model.count_params():,}; multiply-adds {macs / 1e9:.2f} G; "
        f"class map {cells[0]}x{cells[1]} = {cells[0] * cells[1]} windows",
    ]
    return "\n".join(lines)
