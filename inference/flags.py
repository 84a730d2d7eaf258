"""The flags evaluate.py, predict.py and export.py share. Stdlib only: a command builds its parser, and
answers --help and bad flags, before it imports torch."""


def add_weights_flag(parser):
    """--raw-weights, for the commands that call load_run."""
    parser.add_argument("--raw-weights", action="store_true",
                        help="a run trained with --ema: its raw weights, not the averaged ones (the default)")
