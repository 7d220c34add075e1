"""Personal data detection and redaction (public path; the implementation is
:mod:`podium.governance.pii`)."""

from .governance.pii import *  # noqa: F403
from .governance.pii import __all__  # noqa: F401
