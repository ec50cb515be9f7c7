"""``clbench report``: tables with confidence intervals, significance tests and figures from run records.

The package is split by concern; importing any module here is cheap (torch, matplotlib and scipy are
imported inside the functions that need them):

- :mod:`clbench.report.loading`   read ``DIR/runs/*.json``, skipping unreadable or partial files
- :mod:`clbench.report.grouping`  split records by stream (benchmark options and training settings),
  group them by configuration (seed excluded), readable labels, ``--baseline`` / ``--claim-group`` specs
- :mod:`clbench.report.stats`     means, Student-t intervals (clipped to a metric's range), paired /
  Welch t-tests
- :mod:`clbench.report.content`   everything a report states, independent of the output format
- :mod:`clbench.report.figures`   matplotlib figures (Agg, PNG)
- :mod:`clbench.report.render`, :mod:`clbench.report.render_html`, :mod:`clbench.report.render_latex`
  the output formats
- :mod:`clbench.report.command`   the ``report`` click command and atomic writing
"""

from __future__ import annotations

FORMATS = ("md", "html", "csv", "latex")

__all__ = ["FORMATS"]
