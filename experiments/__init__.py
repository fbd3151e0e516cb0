"""The checkout's experiments: scripts (``python experiments/<name>.py``) that are also a package, so
the report (``eyejax report``, eyejax.app.report) imports them as ``experiments.<name>``. They
use only the eyejax library; nothing in eyejax/ except the report imports them. Not installed with
the wheel."""
