"""memsnap.analyze(): what `memsnap analyze --format json` prints, as a dict.

The library writes the JSON (ms_timeline_analyze_path + ms_timeline_write_json, the very
writer the command uses), so the dict is the command's output parsed, key for key.
"""
import json
import warnings

from ._memsnap import _analyze_json


def analyze(path, top=10):
    """The analysis of path, monitor output (CSV or JSON lines) or a trace written by
    `memsnap record`, told apart by its contents: the dict `memsnap analyze --format json
    [--top N]` prints (schema "memsnap.analyze/1", docs/analyze-format.md). top: the call
    sites listed for a trace. The library's warnings and notes about the input (a cut last
    line, a trace without its END record) are given as RuntimeWarning. Raises memsnap.Error
    with the library's message for a missing or malformed file."""
    text, notes = _analyze_json(path, top)
    for line in (notes or "").splitlines():
        warnings.warn(line, RuntimeWarning, stacklevel=2)
    return json.loads(text)
