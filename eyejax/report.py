"""`python -m eyejax.report [--out report] [--reduced]`: regenerate every comparison the README
shows. The same command as `eyejax report`; it lives in `eyejax.app.report` with the other console
commands, and this module only gives it the module name the README and issue 10 use."""
from __future__ import annotations

from eyejax.app.report import build, main

__all__ = ["build", "main"]

if __name__ == "__main__":
    main()
