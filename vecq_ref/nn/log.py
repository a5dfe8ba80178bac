"""The training log: flat dict records as JSON lines, mirrored to CSV for the figures code.

Two streams, ``steps`` and ``epochs``. Each record is a flat dict (layer metrics are keyed
``"<layer>/<metric>"``) so it maps onto one CSV row. Values that were not computed are
``null`` in JSON and empty in CSV. Records hold no wall-clock time, so the same seed gives
byte-identical files.
"""

from __future__ import annotations

import csv
import io as _io
import json
import math
from pathlib import Path

from ..io import write_text

STREAMS = ("steps", "epochs")


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _line(record):
    return json.dumps({k: _clean(v) for k, v in record.items()}, allow_nan=False) + "\n"


def to_csv(records):
    """CSV text of ``records``; columns are every key in order of first appearance."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, columns, restval="", lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v)
                         for k, v in r.items()})
    return buf.getvalue()


def read_jsonl(path):
    path = Path(path)
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class MetricsLog:
    """Records kept in memory and, with a folder, appended to ``<stream>.jsonl`` at once."""

    def __init__(self, folder=None):
        self.folder = Path(folder) if folder is not None else None
        self.records = {s: [] for s in STREAMS}

    def _path(self, stream, ext):
        return self.folder / f"{stream}.{ext}"

    def add(self, stream, record):
        record = {k: _clean(v) for k, v in record.items()}
        self.records[stream].append(record)
        if self.folder is not None:
            with open(self._path(stream, "jsonl"), "a", encoding="utf-8") as fh:
                fh.write(_line(record))

    def truncate(self, last_step):
        """Keep the records up to global step ``last_step`` (for resume), rewriting files."""
        for s in STREAMS:
            kept = [r for r in read_jsonl(self._path(s, "jsonl")) if r["step"] <= last_step]
            self.records[s] = kept
            write_text(self._path(s, "jsonl"), "".join(_line(r) for r in kept), force=True)
        self.write_csv()

    def write_csv(self):
        if self.folder is None:
            return
        for s in STREAMS:
            write_text(self._path(s, "csv"), to_csv(self.records[s]), force=True)
