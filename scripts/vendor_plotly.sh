#!/usr/bin/env bash
# Replace the report's plotly.js with plotly's own minified basic bundle (scatter, bar, pie) from the npm registry:
#   scripts/vendor_plotly.sh 4.1.1
# then put the version and sha256 it prints into PLOTLY_JS in grpo_lab/report.py. The file is used unmodified.
set -euo pipefail
version="${1:?usage: scripts/vendor_plotly.sh VERSION}"
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "plotly.js-basic-dist-min@$version" >/dev/null && tar xzf plotly.js-basic-dist-min-*.tgz)
cp "$tmp/package/plotly-basic.min.js" grpo_lab/vendor/plotly-basic.min.js
cp "$tmp/package/LICENSE" grpo_lab/vendor/plotly.js.LICENSE
echo "plotly.js-basic-dist-min $version sha256 $(sha256sum grpo_lab/vendor/plotly-basic.min.js | cut -d' ' -f1)"
