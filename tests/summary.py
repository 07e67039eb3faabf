"""Prints the closing line of `make check`: "N passed, M failed, K skipped" over the meson test
logs of the build directories given (each build's meson-logs/testlog.json, one JSON object per
test). Exits 1 when a test failed or no test ran."""
import json
import sys

passed = failed = skipped = 0
for build in sys.argv[1:]:
    with open(build + "/meson-logs/testlog.json", encoding="utf-8") as log:
        for line in log:
            result = json.loads(line).get("result")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed or passed == 0 else 0)
