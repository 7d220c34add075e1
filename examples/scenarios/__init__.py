"""Seed scenarios as runnable workflows (issue 17). Each module exposes ``workflow`` and
``SAMPLE_INPUT`` (paths to the shipped sample data in ``data/``); see docs/scenarios.md."""
