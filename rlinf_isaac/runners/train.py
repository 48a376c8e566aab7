"""``python -m rlinf_isaac.runners.train [CONFIG] [key=value ...]``: train (see cli.py)."""

from rlinf_isaac.runners.cli import main_train

if __name__ == "__main__":
    raise SystemExit(main_train())
