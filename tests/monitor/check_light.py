"""Checks that every statm-only sample of a `memsnap monitor` JSON lines file is what its last
full sample says with the fresh figures: the same keys in the same order and the same values,
but for the record's time_ns, seq, full and pss_age_ns, the snapshot's timestamps and statm's
five figures (and "tree": null). Every sample line must also be compact JSON as Python writes
it, byte for byte: the monitor puts statm-only records together from the full record's text.

The target must be idle (a sleeping process), so that statm's figures are those of the full
sample too: they are compared, not copied.

Usage: python3 check_light.py FILE
"""
import json
import sys
from collections import OrderedDict

STATM = ("rss_bytes", "vms_bytes", "shared_bytes", "text_bytes", "data_bytes")


def main():
    last_full = None
    light = 0
    with open(sys.argv[1], encoding="utf-8") as fp:
        for no, line in enumerate(fp, 1):
            rec = json.loads(line, object_pairs_hook=OrderedDict)
            if rec["record"] != "sample":
                continue
            again = json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"
            if again != line:
                sys.exit("line %d is not written as compact JSON:\n%s%s" % (no, line, again))
            if rec["full"]:
                last_full = rec
                continue
            if last_full is None:
                sys.exit("line %d: a statm-only sample before any full one" % no)
            want = json.loads(json.dumps(last_full), object_pairs_hook=OrderedDict)
            for k in ("time_ns", "seq", "full", "pss_age_ns"):
                want[k] = rec[k]
            snap, got = want["snapshot"], rec["snapshot"]
            snap["timestamp_ns"], snap["monotonic_ns"] = got["timestamp_ns"], got["monotonic_ns"]
            for k in STATM:  # the target is idle: its statm figures stay those of the full sample
                if not isinstance(got["process"][k], int) or got["process"][k] <= 0:
                    sys.exit("line %d: process.%s is %r" % (no, k, got["process"][k]))
            if "tree" in want:
                want["tree"] = None
            if list(want.items()) != list(rec.items()):
                sys.exit("line %d differs from its full sample:\n%s\n%s" % (no, json.dumps(want),
                                                                          line))
            if rec["time_ns"] != got["timestamp_ns"] or rec["pss_age_ns"] <= 0:
                sys.exit("line %d: time_ns / pss_age_ns" % no)
            light += 1
    if light == 0:
        sys.exit("no statm-only sample")
    print("%d statm-only samples match their full ones" % light)


if __name__ == "__main__":
    main()
