"""The files ``podium init`` writes: a small project that runs as it is."""

from __future__ import annotations

import keyword
import os
import re
import sys

_WORKFLOW = """\
# yaml-language-server: $schema=../workflow.schema.json
# A first workflow. Check it:  podium workflows validate workflows/hello.yaml
# Run it:                      podium run workflows/hello.yaml --input '{{"name": "Ada"}}'
name: hello
version: "1"
description: Greets someone and counts the letters of their name
input:
  name: string
  shout: boolean?
steps:
  - id: greet
    uses: {package}.steps:greet          # a Python function of this project
    with:
      name: "{{{{ input.name }}}}"

  - id: count
    uses: set                            # a built-in step type: returns its arguments
    with:
      letters: "{{{{ input.name | length }}}}"

  - id: say
    uses: log
    with:
      message: "{{{{ steps.greet.output | upper if input.shout | default(false) else steps.greet.output }}}}"

outputs:
  greeting: "{{{{ steps.say.output }}}}"
  letters: "{{{{ steps.count.output.letters }}}}"
"""

_STEPS = '''\
"""Step functions that the workflows of this project call (``uses: {package}.steps:greet``).

Arguments come from the step's ``with:``, checked against the annotations. Add ``ctx`` as a
parameter to get the run id, attempt number, idempotency key and a logger.
"""

from __future__ import annotations


def greet(name: str) -> str:
    return f"Hello, {{name}}!"
'''

_CONFIG = """\
# Podium settings for this project (podium config show prints the effective values and their
# sources). PODIUM_<NAME> environment variables and command-line flags override them.
[podium]
# Where runs are stored: every command run anywhere in this project uses it. A relative SQLite
# path is relative to this file's folder.
db = "sqlite:///.podium/podium.db"
workflows = "workflows"
# model = "local:smollm2-135m"     # default model ("provider:model")
# log_format = "json"              # text or json
# serve_port = 8321                # podium serve
"""

_README = """\
# {name}

Workflows for [Podium](https://github.com/podium-orchestration/podium), durable AI orchestration.

## Workflows

- `workflows/hello.yaml`: greets someone (Python step `{package}/steps.py:greet`, built-in `set` and `log`).

```sh
pip install podium                                            # or, from a checkout of Podium: pip install -e PATH
podium workflows validate workflows/                          # check every workflow file
podium run workflows/hello.yaml --input '{{"name": "Ada"}}'     # run one, with live progress
podium workflows graph workflows/hello.yaml                   # see its steps
podium runs                                                   # what ran, stored in .podium/podium.db
```

Runs are durable: stop one half-way (Ctrl-C) and `podium runs resume` finishes it without redoing the
steps that completed. Editors that know JSON Schema (VS Code with the YAML extension) validate and
complete the workflow files with `workflow.schema.json`.
"""

_GITIGNORE = ".podium/\n__pycache__/\n"


def package_name(project: str) -> str:
    """A Python package name for a project name: ``Support Bot`` -> ``support_bot``."""
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", project).strip("_").lower() or "flows"
    if name[0].isdigit():
        name = f"flows_{name}"
    if keyword.iskeyword(name) or name in sys.stdlib_module_names or name in ("podium", "tests", "test"):
        name = f"{name}_flows"
    return name


def scaffold(folder: str, project: str, *, force: bool = False) -> tuple[list[str], list[str], str]:
    """Write the project files; returns (written, kept because they exist, the package name)."""
    from podium.yaml import schema_text

    package = package_name(project)
    files = {
        "podium.toml": _CONFIG,
        "README.md": _README.format(name=project, package=package),
        ".gitignore": _GITIGNORE,
        "workflow.schema.json": schema_text(),
        os.path.join("workflows", "hello.yaml"): _WORKFLOW.format(package=package),
        os.path.join(package, "__init__.py"): f'"""Step functions of the {project} workflows."""\n',
        os.path.join(package, "steps.py"): _STEPS.format(package=package),
    }
    written, kept = [], []
    for rel, text in files.items():
        path = os.path.join(folder, rel)
        if os.path.exists(path) and not force:
            kept.append(path)
            continue
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        written.append(path)
    return written, kept, package
