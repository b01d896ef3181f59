"""Teams surface of the handoff bots: settings, the LLM agent, and the process entry point.

Importing ``microsoft_teams.apps`` runs ``load_dotenv(find_dotenv(usecwd=True))``, which would let a
stray ``.env`` in the working directory leak into this process (a stray ``CLIENT_ID`` alone would even
switch the SDK to managed identity). The import happens here, once, and anything it added to the
environment is taken out again, so an instance's identity is only its chosen env file.
"""

from __future__ import annotations

import os as _os
import warnings as _warnings

# The SDK announces a preview feature we do not use on every import; keep start-up output clean.
_warnings.filterwarnings("ignore", message="HtmlWidgetSecurityPolicy is in preview")

_environment_before_sdk = set(_os.environ)
import microsoft_teams.apps  # noqa: E402,F401  (imported for its side effect, which is undone below)

for _name in set(_os.environ) - _environment_before_sdk:
    del _os.environ[_name]
del _environment_before_sdk
