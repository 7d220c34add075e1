"""Output validators (public path; the implementation is :mod:`podium.governance.validators`)."""

from .governance.validators import *  # noqa: F403
from .governance.validators import __all__  # noqa: F401
