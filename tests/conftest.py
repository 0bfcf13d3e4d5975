"""Hypothesis profiles: randomised while developing, derandomised (reproducible) in CI."""

import os

from hypothesis import settings

settings.register_profile("dev", deadline=None)
# CI runs each example set the same way every time, so a landing never hinges on a lucky draw; bugs are
# found by the randomised runs developers make (and `--hypothesis-seed=N` replays any of them).
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
