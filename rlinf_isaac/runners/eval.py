"""``python -m rlinf_isaac.runners.eval [CONFIG] [key=value ...]``: evaluate (see cli.py)."""

from rlinf_isaac.runners.cli import main_eval

if __name__ == "__main__":
    raise SystemExit(main_eval())
