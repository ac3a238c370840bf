"""Where the tests find the corpus of public log samples and SigmaHQ rules.

``PROXYHUNT_CORPUS`` names the directory; without it, the tests look for
``shared/corpus`` beside the checkout. Tests that need it skip when it is
absent, and the product never reads it.
"""

from __future__ import annotations

import os
from pathlib import Path

CORPUS = Path(os.environ.get("PROXYHUNT_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus")
