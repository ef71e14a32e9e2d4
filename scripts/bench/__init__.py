"""The benchmark suite: `python3 dev.py bench` (or `python -m scripts.bench`); see __main__.py."""
