"""One module per subcommand; each exposes ``register(subparsers)``.

``register`` adds its parser and sets ``run=function(args) -> int`` as the
parser default. Keep command modules thin: parse, call the library, print.
"""
